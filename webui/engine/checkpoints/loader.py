"""Single-file checkpoint (.safetensors / .ckpt) -> a diffusers pipeline, offline.

What the file is comes from engine.checkpoints.architecture (probing), its components from
engine.checkpoints.components (building), so real full-size checkpoints and tiny test checkpoints load
through the same code. Inpainting checkpoints (a 9-channel UNet) load with their family's "-inpaint"
config into diffusers' inpaint pipeline; other tasks' pipelines share the loaded components
(LoadedCheckpoint.pipeline).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from webui.core.errors import ModelLoadError
from webui.engine.checkpoints import components as C
from webui.engine.checkpoints import ldm_layout as L
from webui.engine.checkpoints.architecture import (
    Architecture,
    answers_like_v_model,
    bundled_config_name,
    default_size,
    family_of,
    is_inpainting,
    is_refiner,
    prediction_hint,
)
from webui.engine.checkpoints.model_defaults import GenerationDefaults, read_defaults
from webui.engine.checkpoints.weights_files import (
    SAFETENSORS_SUFFIXES,
    open_state_dict,
    read_metadata,
    shapes_of,
)
from webui.engine.threads import model_bytes

if TYPE_CHECKING:  # diffusers is imported by the first load, not with the page
    from diffusers import DiffusionPipeline, SchedulerMixin, UNet2DConditionModel


@dataclass
class LoadedCheckpoint:
    """One checkpoint's components in `pipe` (the class its bundled model_index.json names: txt2img, or
    the inpaint pipeline for inpainting checkpoints), plus the other pipelines built on them (`pipeline`)."""

    path: Path
    architecture: Architecture
    pipe: DiffusionPipeline
    defaults: GenerationDefaults = field(default_factory=GenerationDefaults)  # from the file's metadata
    weight_bytes: int = 0  # the size of its weights as loaded (chooses the CPU thread count)
    _pipelines: dict[type, DiffusionPipeline] = field(default_factory=dict, repr=False)

    def pipeline(self, cls: type[DiffusionPipeline]) -> DiffusionPipeline:
        """`cls` (e.g. StableDiffusionImg2ImgPipeline) over this checkpoint's own module objects: no copy
        of the weights, so LoRA, VAE choice, placement and offload hooks apply to it as well. Cached.

        What diffusers' `from_pipe` does minus its final `.to(dtype)`, which casts every shared module to
        one dtype (float32 unless told otherwise): it would turn a half-precision UNet into float32, or the
        float32 VAE of --no-half-vae into float16, under the base pipeline's feet."""
        if isinstance(self.pipe, cls):
            return self.pipe
        if cls not in self._pipelines:
            accepted = inspect.signature(cls.__init__).parameters
            given = {**self.pipe.config, **self.pipe.components}  # components replace their config entries
            given["scheduler"] = _settled_scheduler(given.get("scheduler"))
            derived = cls(**{name: given[name] for name in accepted if name in given and name != "self"})
            derived.set_progress_bar_config(disable=True)  # progress goes to the job (engine.sampling)
            self._pipelines[cls] = derived
        return self._pipelines[cls]


def _settled_scheduler(scheduler: SchedulerMixin | None) -> SchedulerMixin | None:
    """The scheduler a derived pipeline is built over. diffusers' img2img and inpaint pipelines warn
    (FutureWarning, in the server log) and rewrite the scheduler's config in place when its steps_offset
    is not 1, as in the scheduler an earlier run left (make_scheduler leaves steps_offset to the schedule
    type). Every batch replaces the scheduler (engine.sampling.generate), so a copy with steps_offset 1
    serves until then and the base pipeline's own stays untouched."""
    if scheduler is None or scheduler.config.get("steps_offset", 1) == 1:
        return scheduler
    return type(scheduler).from_config(scheduler.config, steps_offset=1)


def detect_architecture(
    state_dict: Mapping[str, torch.Tensor],
    metadata: Mapping[str, str] | None = None,
    sidecar: Path | None = None,
    unet: UNet2DConditionModel | None = None,
) -> Architecture:
    """Family from the tensors; prediction type from the sidecar yaml / metadata, else (SD2 only) from
    how the UNet answers (`unet`: an already loaded UNet of this state dict, built here when None)."""
    family = family_of(state_dict)
    prediction = prediction_hint(state_dict, metadata or {}, sidecar)
    if prediction is None and family == "sd2":
        if unet is None:
            from diffusers import UNet2DConditionModel

            fitted = C.fit_configs(state_dict, "sd2", "sd2")
            unet = C.build_module(
                UNet2DConditionModel,
                fitted["unet"],
                state_dict,
                L.unet_layout,
                "UNet",
                torch.device("cpu"),
                torch.float32,
            )
        prediction = "v_prediction" if answers_like_v_model(unet) else "epsilon"
    return Architecture(
        family=family,
        prediction_type=prediction or "epsilon",
        inpainting=is_inpainting(state_dict),
        default_size=default_size(family, prediction or "epsilon"),
        zero_terminal_snr="ztsnr" in state_dict,
        refiner=is_refiner(state_dict),
    )


def probe_defaults(path: str | Path) -> GenerationDefaults:
    """The defaults `load_checkpoint` will give this file, from its header alone (names, shapes and
    metadata: nothing is read), so the page can open with them while the model still loads. A pickle
    would have to be read whole: it gets the declared defaults. ModelLoadError for a file it cannot probe."""
    path = Path(path)
    if path.suffix.lower() not in SAFETENSORS_SUFFIXES:
        return GenerationDefaults()
    metadata = read_metadata(path)
    shapes = shapes_of(open_state_dict(path))
    try:
        family = family_of(shapes)
        hint = prediction_hint(shapes, metadata, path.with_suffix(".yaml"))
    except ModelLoadError as exc:
        raise ModelLoadError(f"{path.name}: {exc}") from None
    return read_defaults(metadata, default_size(family, hint or "epsilon"), path.name)


def load_checkpoint(path: str | Path, device: torch.device, dtype: torch.dtype) -> LoadedCheckpoint:
    """Load an SD1/SD2/SDXL single-file checkpoint into a complete pipeline on `device` in `dtype`.

    Offline: only the bundled configs and tokenizer files are read besides the checkpoint (and its
    A1111-style sidecar <stem>.yaml, which may declare v-prediction)."""
    import diffusers

    path = Path(path)
    # tensors read and converted as each module takes them: never the whole file at once
    sd = open_state_dict(path, C.converter(device, dtype))
    metadata = read_metadata(path)
    sidecar = path.with_suffix(".yaml")
    shapes = shapes_of(sd)  # the probes look at shapes only: nothing is read for them
    try:
        family = family_of(shapes)
        hint = prediction_hint(shapes, metadata, sidecar)
        config_name = bundled_config_name(
            family, hint or "epsilon", is_inpainting(shapes), is_refiner(shapes)
        )
        parts, used = C.assemble(sd, family, config_name, device, dtype)
        surplus = C.unused_tensors(shapes, used, family)
        if surplus:
            raise ModelLoadError(
                f"{len(surplus)} tensors belong to no component, e.g. {', '.join(surplus[:3])}"
            )
        architecture = detect_architecture(shapes, metadata, sidecar, unet=parts["unet"])
        if architecture.config_name != config_name:  # the UNet's answer showed SD2 v-prediction
            unet_config = C.fit_configs(shapes, architecture.config_name, family)["unet"]
            parts["unet"] = C.rebuild_unet(parts["unet"], unet_config)
    except ModelLoadError as exc:
        raise ModelLoadError(f"{path.name}: {exc}") from None
    scheduler = C.base_scheduler(architecture)
    index = C.read_json(C.CONFIGS / architecture.config_name / "model_index.json")
    if family == "sdxl":
        flags = ("force_zeros_for_empty_prompt", "requires_aesthetics_score")
        options = {key: index[key] for key in flags if key in index} | {"add_watermarker": False}
        if architecture.refiner:  # OpenCLIP-G alone: diffusers' refiner pipeline takes no first encoder
            options |= {"text_encoder": None, "tokenizer": None}
    else:
        options = {"safety_checker": None, "feature_extractor": None, "requires_safety_checker": False}
    pipe = getattr(diffusers, index["_class_name"])(**parts, scheduler=scheduler, **options)
    defaults = read_defaults(metadata, architecture.default_size, path.name)
    return LoadedCheckpoint(
        path=path,
        architecture=architecture,
        pipe=pipe,
        defaults=defaults,
        weight_bytes=model_bytes(pipe.components),
    )
