"""ControlNet models: the models/ControlNet folder, loading files offline, and what one generation needs.

Files come in two layouts, both loaded here with the bundled configs (configs/controlnet-sd1,
configs/controlnet-sdxl) fitted to the tensors' shapes:
- the original one (lllyasviel's .pth/.safetensors): `control_model.` + the LDM UNet encoder names
  (input_blocks, middle_block, time_embed, label_emb for SDXL), plus `input_hint_block.N` (the
  conditioning image encoder), `zero_convs.N.0` and `middle_block_out.0`;
- the diffusers one (a ControlNetModel's state dict saved as one file), turned into the original layout
  by the same mapping read backwards, so one path loads both.
A ControlNet is a trained copy of its checkpoint's UNet encoder: it must match the loaded checkpoint's
family, text width and channels (checked, with a message naming both), and its attention head layout,
which the weights do not show, is the checkpoint's.

Models are named as sd-webui-controlnet names them, `stem [hash]` with A1111's legacy 8-digit model hash.

In a generation (ControlPlan) the ControlNets run from a hook on the UNet, inside whichever pipeline the
task uses, instead of diffusers' StableDiffusion[XL]ControlNet{,Img2Img,Inpaint}Pipeline: the img2img and
inpaint tasks hand their pipelines latents (engine.img2img), which diffusers' ControlNet inpaint pipelines
cannot take (they mask `image` as pixels and have no masked_image_latents), and a 9-channel inpainting
UNet needs its first 4 input channels split off for the ControlNet. The hook does what those pipelines do
(the same result to the bit: tests/engine/test_controlnet.py) for every kind of run alike.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from accelerate import init_empty_weights
from diffusers import ControlNetModel
from diffusers.image_processor import VaeImageProcessor
from PIL import Image

from webui.core import controlnet_infotext
from webui.core.errors import InvalidParameter, ModelLoadError, ModelNotFound
from webui.core.params import CONTROL_MODES, ControlUnit
from webui.engine.checkpoints import ldm_layout as L
from webui.engine.checkpoints.loader import CONFIGS, LoadedCheckpoint, fill_module
from webui.engine.checkpoints.weights_files import read_state_dict
from webui.engine.controlnet import preprocessors
from webui.engine.controlnet.annotators import Annotators

log = logging.getLogger(__name__)

PREFIX = "control_model."
SUFFIXES = (".safetensors", ".pth", ".pt", ".ckpt")  # sd-webui-controlnet's list
_HINT = PREFIX + "input_hint_block."
_DIFFUSERS_PROBE = "controlnet_cond_embedding.conv_in.weight"
_LABEL = PREFIX + "label_emb.0.0.weight"


# --- layout ---------------------------------------------------------------------------------------


def _indices(keys: Iterable[str], pattern: str) -> list[int]:
    regex = re.compile(pattern)
    return sorted({int(m.group(1)) for key in keys if (m := regex.match(key))})


def controlnet_layout(keys: Iterable[str], prefix: str = PREFIX) -> L.Layout:
    """Where each tensor of a diffusers ControlNetModel lives in the original single-file layout.

    The UNet-encoder part is the LDM UNet layout under `prefix`; the hint encoder's convolutions sit at
    the even indices of `input_hint_block` (SiLUs in between), first conv_in, then the blocks, then
    conv_out."""
    keys = list(keys)
    own = ("controlnet_cond_embedding.", "controlnet_down_blocks.", "controlnet_mid_block.")
    layout = L.unet_layout([k for k in keys if not k.startswith(own)], prefix)
    blocks = len(_indices(keys, r"controlnet_cond_embedding\.blocks\.(\d+)\."))
    for key in keys:
        module, _, param = key.rpartition(".")
        parts = module.split(".")
        if parts[0] == "controlnet_cond_embedding":
            index = {"conv_in": 0, "conv_out": 2 * (blocks + 1)}.get(parts[1])
            index = 2 * (int(parts[2]) + 1) if index is None else index
            layout[key] = L.Slot(f"{prefix}input_hint_block.{index}.{param}")
        elif parts[0] == "controlnet_down_blocks":
            layout[key] = L.Slot(f"{prefix}zero_convs.{parts[1]}.0.{param}")
        elif parts[0] == "controlnet_mid_block":
            layout[key] = L.Slot(f"{prefix}middle_block_out.0.{param}")
    return layout


def to_original(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A diffusers-layout ControlNet state dict in the original layout."""
    try:
        return L.to_ldm(state_dict, controlnet_layout(state_dict.keys()))
    except (ValueError, KeyError) as exc:
        raise ModelLoadError(f"not a ControlNet in the diffusers layout ({exc})") from None


def read_controlnet(path: Path) -> dict[str, torch.Tensor]:
    """The file's tensors in the original layout, whichever layout the file uses."""
    sd = read_state_dict(path)
    if _HINT + "0.weight" in sd:
        return sd
    if _DIFFUSERS_PROBE in sd:
        try:
            return to_original(sd)
        except ModelLoadError as exc:
            raise ModelLoadError(f"{path.name}: {exc}") from None
    raise ModelLoadError(
        f"{path.name}: not a ControlNet: it has neither {_HINT}* (original layout) nor "
        f"{_DIFFUSERS_PROBE} (diffusers layout) tensors, e.g. {', '.join(list(sd)[:3])}"
    )


# --- architecture and config ----------------------------------------------------------------------


def _text_width(sd: Mapping[str, torch.Tensor]) -> int | None:
    return next((v.shape[1] for k, v in sd.items() if k.endswith("attn2.to_k.weight")), None)


def describe(sdxl: bool, text_width: int | None) -> str:
    """How the user knows the model's kind: "SDXL", "SD1.x" (CLIP ViT-L, 768), "SD2.x" (1024)."""
    if sdxl:
        return "SDXL"
    return {768: "SD1.x", 1024: "SD2.x"}.get(text_width or 0, f"SD1/SD2-style (text width {text_width})")


def check_fits(sd: Mapping[str, torch.Tensor], name: str, target: LoadedCheckpoint) -> None:
    """ModelLoadError unless the ControlNet was made for the loaded checkpoint's kind of model."""
    unet = target.pipe.unet.config
    mine = describe(_LABEL in sd, _text_width(sd))
    theirs = describe(target.architecture.family == "sdxl", unet.cross_attention_dim)
    same_kind = (_LABEL in sd) == (target.architecture.family == "sdxl")
    if not same_kind or _text_width(sd) != unet.cross_attention_dim:
        raise ModelLoadError(
            f"ControlNet {name} is an {mine} ControlNet; the checkpoint {target.path.name} is {theirs}. "
            f"Choose a ControlNet made for {theirs} models."
        )


def _bundled_config(name: str) -> dict[str, Any]:
    path = CONFIGS / name / "config.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(
            f"bundled config {path} is missing or broken ({exc}); reinstall the web UI"
        ) from None


def fit_config(sd: Mapping[str, torch.Tensor], target_unet: Mapping[str, Any]) -> dict[str, Any]:
    """The bundled ControlNet config with its shape-derived fields read from the original-layout tensors."""
    sdxl = _LABEL in sd
    base = _bundled_config("controlnet-sdxl" if sdxl else "controlnet-sd1")
    in_channels = sd[PREFIX + "input_blocks.0.0.weight"].shape[1]
    # A ControlNet is the UNet's encoder: fit it as a UNet. It has no output conv, so give that the
    # input's width (a meta tensor, never read).
    as_unet = {**sd, PREFIX + "out.2.weight": torch.empty((in_channels, 1, 1, 1), device="meta")}
    pooled = None
    if sdxl:
        pooled = (
            target_unet["projection_class_embeddings_input_dim"] - 6 * target_unet["addition_time_embed_dim"]
        )
    unet = L.fit_unet_config(as_unet, {}, sample_size=0, pooled_dim=pooled, prefix=PREFIX)
    hint = _indices(sd, re.escape(_HINT) + r"(\d+)\.weight")
    config = dict(base)
    config.update({key: unet[key] for key in _ENCODER_FIELDS if key in unet})
    config.update(
        conditioning_channels=sd[_HINT + "0.weight"].shape[1],
        # conv_in, then every second conv (the strided ones) set the widths; the last is conv_out
        conditioning_embedding_out_channels=[sd[f"{_HINT}{i}.weight"].shape[0] for i in hint[:-1:2]],
        # not in the weights: the head layout of the family's UNet the ControlNet was copied from
        attention_head_dim=target_unet["attention_head_dim"],
        num_attention_heads=target_unet.get("num_attention_heads"),
        upcast_attention=target_unet.get("upcast_attention"),
    )
    return config


_ENCODER_FIELDS = (
    "in_channels",
    "block_out_channels",
    "layers_per_block",
    "down_block_types",
    "cross_attention_dim",
    "use_linear_projection",
    "transformer_layers_per_block",
    "projection_class_embeddings_input_dim",
    "addition_time_embed_dim",
)


def _check_channels(config: Mapping[str, Any], name: str, target: LoadedCheckpoint) -> None:
    """The residuals a ControlNet adds must have the UNet's shapes."""
    unet = target.pipe.unet.config
    mine = (list(config["block_out_channels"]), config["layers_per_block"])
    theirs = (list(unet.block_out_channels), unet.layers_per_block)
    if mine != theirs:
        raise ModelLoadError(
            f"ControlNet {name} has channels {mine[0]} with {mine[1]} layers a level; the checkpoint "
            f"{target.path.name} has {theirs[0]} with {theirs[1]}: they do not fit together"
        )


def load_controlnet(
    path: Path, target: LoadedCheckpoint, device: torch.device, dtype: torch.dtype
) -> ControlNetModel:
    """Load a ControlNet file for the `target` checkpoint, offline, every weight from the file (strict)."""
    sd = read_controlnet(path)
    check_fits(sd, path.name, target)
    try:
        config = fit_config(sd, target.pipe.unet.config)
    except (KeyError, IndexError, StopIteration, ValueError) as exc:
        raise ModelLoadError(
            f"{path.name}: the ControlNet tensors are not laid out as expected ({exc})"
        ) from None
    _check_channels(config, path.name, target)
    try:
        with init_empty_weights():
            model = ControlNetModel.from_config(config)
    except (ValueError, TypeError, RuntimeError) as exc:
        raise ModelLoadError(
            f"{path.name}: the ControlNet cannot be built with the file's shapes: {exc}"
        ) from None
    layout = controlnet_layout(model.state_dict().keys())
    tensors, missing = L.from_ldm(sd, layout)
    if missing:
        raise ModelLoadError(
            f"{path.name}: {len(missing)} ControlNet tensors missing, e.g. {', '.join(missing[:3])}"
        )
    used = {slot.key for slot in layout.values()}
    surplus = [key for key in sd if key not in used]
    if surplus:
        raise ModelLoadError(
            f"{path.name}: {len(surplus)} tensors belong to no ControlNet part, e.g. {', '.join(surplus[:3])}"
        )
    return fill_module(model, tensors, device, dtype, f"{path.name}: the ControlNet")


# --- the folder -----------------------------------------------------------------------------------


def legacy_hash(path: Path) -> str:
    """A1111's old model hash (sha256 of the 64 KiB at 1 MiB, 8 hex digits): sd-webui-controlnet's names."""
    with open(path, "rb") as stream:
        stream.seek(0x100000)
        return hashlib.sha256(stream.read(0x10000)).hexdigest()[:8]


@dataclass(frozen=True)
class ControlNetEntry:
    path: Path
    name: str  # relative path with extension
    model_name: str  # file stem: what the title and the infotext show

    def title(self) -> str:
        return f"{self.model_name} [{legacy_hash(self.path)}]"


class ControlNetLibrary:
    """The ControlNet files under one folder (rescanned on refresh), the loaded ones (LRU, `cache_size`),
    and the folders annotator weights are looked up in (engine.preprocessors)."""

    def __init__(self, root: Path | None, annotator_dirs: Sequence[Path] = (), cache_size: int = 3) -> None:
        self.root = root
        self.annotators = Annotators(annotator_dirs)
        self.cache_size = cache_size
        self._entries: tuple[ControlNetEntry, ...] = ()
        self._cache: OrderedDict[tuple[Any, ...], ControlNetModel] = OrderedDict()
        self._lock = threading.Lock()
        self.refresh()

    def refresh(self) -> None:
        found = []
        if self.root is not None and self.root.is_dir():
            root = self.root.resolve()
            for path in sorted(root.rglob("*")):
                # annotator weights (annotators/…) are preprocessor files, not ControlNets
                relative = path.relative_to(root)
                if path.suffix.lower() in SUFFIXES and path.is_file() and relative.parts[0] != "annotators":
                    found.append(ControlNetEntry(path, relative.as_posix(), path.stem))
        self._entries = tuple(found)

    @property
    def entries(self) -> tuple[ControlNetEntry, ...]:
        return self._entries

    def titles(self) -> list[str]:
        return [entry.title() for entry in self._entries]

    def find(self, wanted: str) -> ControlNetEntry:
        """By title ("name [hash]"), file name, stem (any case, as sd-webui-controlnet) or hash."""
        wanted = wanted.strip()
        plain = re.sub(r" \[[0-9a-fA-F]{8,10}\]$", "", wanted)
        for entry in self._entries:
            if plain.lower() in (name.lower() for name in (entry.name, entry.model_name, entry.path.name)):
                return entry
        for entry in self._entries:
            if wanted.lower() == legacy_hash(entry.path):
                return entry
        known = ", ".join(e.name for e in self._entries) or f"none (put ControlNet files in {self.root})"
        raise ModelNotFound(f"ControlNet model {wanted!r} not found. Available: {known}")

    def load(
        self, entry: ControlNetEntry, target: LoadedCheckpoint, device: torch.device, dtype: torch.dtype
    ) -> ControlNetModel:
        """The model for `target`'s kind of checkpoint, from the cache when the file has not changed."""
        stat = entry.path.stat()
        key = (entry.path, stat.st_size, stat.st_mtime_ns, target.architecture.config_name, device, dtype)
        with self._lock:
            model = self._cache.pop(key, None)
            if model is None:
                log.info("Loading ControlNet %s", entry.name)
                model = load_controlnet(entry.path, target, device, dtype)
            self._cache[key] = model
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
            return model


# --- one generation -------------------------------------------------------------------------------

SOFT_INJECTION_BASE = 0.825  # sd-webui-controlnet: residual i of n is scaled by 0.825 ** (n - 1 - i)


@dataclass(frozen=True)
class ControlPlan:
    """The enabled units of one generation, resolved: their models, their control maps (at the output
    size) and the units as the infotext shows them (model titles, the resolutions and thresholds used).

    It runs inside whatever pipeline the task uses (txt2img, img2img, inpaint, inpainting checkpoints):
    a hook on the UNet computes the ControlNets' residuals for every UNet call and hands them to the UNet
    as diffusers' ControlNet pipelines do (down_block_additional_residuals, mid_block_additional_residual)."""

    units: tuple[ControlUnit, ...]  # all units, the enabled ones resolved (the infotext numbers them all)
    models: tuple[ControlNetModel, ...]  # one per enabled unit, in order
    maps: tuple[Image.Image, ...]

    @property
    def enabled(self) -> tuple[ControlUnit, ...]:
        return tuple(unit for unit in self.units if unit.enabled)

    def infotext_entries(self) -> dict[str, str]:
        return controlnet_infotext.entries(self.units)

    @contextmanager
    def installed(self, pipe: Any, count: int) -> Iterator[None]:
        """For one run of `pipe` over `count` images: the UNet gets the ControlNets' residuals. Install it
        before other UNet hooks (composable diffusion), so that it sees diffusers' own batch."""
        guide = _Guide(self, pipe, count)
        handle = pipe.unet.register_forward_pre_hook(guide, with_kwargs=True)
        try:
            yield
        finally:
            handle.remove()


class _Guide:
    """The UNet pre-hook of one run: diffusers' ControlNet step, unit by unit, with sd-webui-controlnet's
    control modes.

    - guidance start/end: a unit acts on UNet call i of n when i/n >= start and (i+1)/n <= end, the rule
      of diffusers' ControlNet pipelines (one UNet call per entry of the pipeline's timesteps);
    - "My prompt is more important": the residuals scaled down from the deepest to the shallowest
      (soft injection);
    - "ControlNet is more important": that, and no control on the unconditional half of the CFG batch
      (cfg injection), so CFG pushes towards the control. diffusers' guess_mode is the same idea with
      other scales, for all ControlNets at once; this works per unit.
    A unit with weight 0, or outside its guidance range, is not run: the UNet gets nothing from it."""

    def __init__(self, plan: ControlPlan, pipe: Any, count: int) -> None:
        self.plan = plan
        self.pipe = pipe
        self.count = count
        self.calls = 0
        processor = VaeImageProcessor(do_convert_rgb=True, do_normalize=False)
        self.conds = [processor.preprocess(image) for image in plan.maps]  # (1, 3, H, W) in [0, 1]

    def __call__(self, unet: Any, args: tuple, kwargs: dict[str, Any]) -> tuple[tuple, dict[str, Any]] | None:
        step, self.calls = self.calls, self.calls + 1
        steps = max(self.pipe.num_timesteps, 1)
        sample = args[0] if args else kwargs["sample"]
        timestep = args[1] if len(args) > 1 else kwargs["timestep"]
        total: list[torch.Tensor] | None = None
        for unit, model, cond in zip(self.plan.enabled, self.plan.models, self.conds):
            if (
                unit.weight == 0
                or step / steps < unit.guidance_start
                or (step + 1) / steps > unit.guidance_end
            ):
                continue
            residuals = self._residuals(unit, model, cond, sample, timestep, kwargs)
            total = residuals if total is None else [a + b for a, b in zip(total, residuals)]
        if total is None:
            return None
        kwargs = {
            **kwargs,
            "down_block_additional_residuals": tuple(total[:-1]),
            "mid_block_additional_residual": total[-1],
        }
        return args, kwargs

    def _residuals(
        self,
        unit: ControlUnit,
        model: ControlNetModel,
        cond: torch.Tensor,
        sample: torch.Tensor,
        timestep: Any,
        kwargs: dict[str, Any],
    ) -> list[torch.Tensor]:
        batch = sample.shape[0]
        down, mid = model(
            sample[:, : model.config.in_channels],  # an inpainting UNet's input adds mask and masked image
            timestep,
            encoder_hidden_states=kwargs["encoder_hidden_states"],
            controlnet_cond=cond.to(sample.device, model.dtype).repeat(batch, 1, 1, 1),
            conditioning_scale=float(unit.weight),
            timestep_cond=kwargs.get("timestep_cond"),
            added_cond_kwargs=kwargs.get("added_cond_kwargs"),
            cross_attention_kwargs=kwargs.get("cross_attention_kwargs"),
            return_dict=False,
        )
        residuals = [*down, mid]
        if unit.control_mode != CONTROL_MODES[0]:
            last = len(residuals) - 1
            residuals = [r * SOFT_INJECTION_BASE ** (last - i) for i, r in enumerate(residuals)]
        if unit.control_mode == CONTROL_MODES[2] and batch == 2 * self.count:
            keep = torch.ones(batch, 1, 1, 1, device=mid.device, dtype=mid.dtype)
            keep[: self.count] = 0  # diffusers puts the unconditional half first
            residuals = [r * keep for r in residuals]
        return residuals


def prepare(
    units: Sequence[ControlUnit],
    library: ControlNetLibrary,
    target: LoadedCheckpoint,
    device: torch.device,
    dtype: torch.dtype,
    size: tuple[int, int],
    init_image: Image.Image | None = None,
    region: tuple[int, int, int, int] | None = None,
) -> ControlPlan | None:
    """Load the enabled units' models and make their control maps at `size` (width, height); None when
    no unit is enabled. `init_image`: the img2img input, for units that use it. `region`: the box of
    `init_image` an "Only masked" inpaint repaints; the control images are cut to it the same way."""
    if not any(unit.enabled for unit in units):
        return None
    resolved: list[ControlUnit] = []
    models: list[ControlNetModel] = []
    maps: list[Image.Image] = []
    for index, unit in enumerate(units):
        if not unit.enabled:
            resolved.append(unit)
            continue
        entry = library.find(unit.model)
        image = unit.image if unit.image is not None else init_image
        if image is None:
            raise InvalidParameter(f"ControlNet unit {index} has no image and there is no img2img input")
        if region is not None and init_image is not None:
            image = _cropped(image, init_image.size, region, unit.resize_mode)
        control_map, used = preprocessors.control_map(unit, image, size, library.annotators)
        models.append(library.load(entry, target, device, dtype))
        maps.append(control_map)
        resolved.append(used.replace(model=entry.title()))
    return ControlPlan(units=tuple(resolved), models=tuple(models), maps=tuple(maps))


def _cropped(
    image: Image.Image, input_size: tuple[int, int], region: tuple[int, int, int, int], mode: str
) -> Image.Image:
    """The control image over the img2img input's area (fitted by the unit's resize mode), cut to `region`."""
    if image.size != input_size:
        image = Image.fromarray(preprocessors.fit(preprocessors.to_array(image), input_size, mode))
    return image.crop(region)
