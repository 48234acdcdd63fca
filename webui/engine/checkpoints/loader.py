"""Single-file checkpoint (.safetensors / .ckpt) -> a diffusers pipeline, offline.

The family (SD1, SD2, SDXL) comes from the tensors' names and shapes, never from the file name; the
component configs are the bundled ones (configs/) with their shape-derived fields fitted to the file, so
real full-size checkpoints and tiny test checkpoints load through the same code. Every weight of every
component must come from the file (strict): a missing, surplus or misshapen tensor is a ModelLoadError,
never a silently random weight. Inpainting checkpoints (a 9-channel UNet) load with their family's
"-inpaint" config into diffusers' inpaint pipeline; other tasks' pipelines share the loaded components
(LoadedCheckpoint.pipeline).
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import diffusers
import torch
import yaml
from accelerate import init_empty_weights
from diffusers import AutoencoderKL, DiffusionPipeline, UNet2DConditionModel
from diffusers import schedulers as diffusers_schedulers
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

from webui.core.errors import ModelLoadError
from webui.engine.checkpoints import ldm_layout as L
from webui.engine.checkpoints.model_defaults import GenerationDefaults, read_defaults
from webui.engine.checkpoints.weights_files import read_metadata, read_state_dict
from webui.engine.sampling.schedulers import zero_terminal_snr_betas

Family = Literal["sd1", "sd2", "sdxl"]
PredictionType = Literal["epsilon", "v_prediction"]

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
# one vocabulary for all; the family folders only set the pad token
TOKENIZER_DIR = CONFIGS / "clip_tokenizer"
CLIP_VOCAB_SIZE = 49408
START_TOKEN, END_TOKEN = 49406, 49407

_UNET_PROBE = L.UNET_PREFIX + "input_blocks.0.0.weight"
_SDXL_LABEL = L.UNET_PREFIX + "label_emb.0.0.weight"
_VAE_PROBE = L.VAE_PREFIX + "encoder.conv_in.weight"
_TEXT_PROBES = {  # token embedding of each text encoder, by (family, component)
    ("sd1", "text_encoder"): L.SD1_CLIP_PREFIX + "text_model.embeddings.token_embedding.weight",
    ("sd2", "text_encoder"): L.SD2_CLIP_PREFIX + "token_embedding.weight",
    ("sdxl", "text_encoder"): L.SDXL_CLIP_L_PREFIX + "text_model.embeddings.token_embedding.weight",
    ("sdxl", "text_encoder_2"): L.SDXL_CLIP_G_PREFIX + "token_embedding.weight",
}
_REFINER_PROBE = "conditioner.embedders.0.model.token_embedding.weight"
# Tensors real checkpoints carry that no diffusers component uses: the DDPM schedule buffers, EMA copies,
# CLIP's position ids and logit scales, and markers some trainers add.
_IGNORED = re.compile(
    r"(betas|alphas_cumprod(_prev)?|sqrt_(one_minus_)?alphas_cumprod|log_one_minus_alphas_cumprod"
    r"|sqrt_recip(m1)?_alphas_cumprod|posterior_\w+|logvar|v_pred|ztsnr|model_ema\..+|denoiser\..+|edm_vpred\..+"
    r"|.+\.position_ids|.+\.logit_scale)"
)


@dataclass(frozen=True)
class Architecture:
    family: Family
    prediction_type: PredictionType
    inpainting: bool  # UNet takes 9 input channels (latents + mask + masked image)
    default_size: int  # the side length, in pixels, the model was trained for
    # trained with a zero-terminal-SNR schedule (a `ztsnr` marker tensor, as ComfyUI and NoobAI use)
    zero_terminal_snr: bool = False

    @property
    def config_name(self) -> str:
        """The bundled config folder (configs/<name>) this architecture uses."""
        return _config_name(self.family, self.prediction_type, self.inpainting)


def _config_name(family: Family, prediction_type: PredictionType, inpainting: bool) -> str:
    if inpainting:
        return f"{family}-inpaint"  # the family's config with a 9-channel UNet and the inpaint pipeline
    return "sd2-v" if family == "sd2" and prediction_type == "v_prediction" else family


@dataclass
class LoadedCheckpoint:
    """One checkpoint's components in `pipe` (the class its bundled model_index.json names: txt2img, or
    the inpaint pipeline for inpainting checkpoints), plus the other pipelines built on them (`pipeline`)."""

    path: Path
    architecture: Architecture
    pipe: DiffusionPipeline
    defaults: GenerationDefaults = field(default_factory=GenerationDefaults)  # from the file's metadata
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
            derived = cls(**{name: given[name] for name in accepted if name in given and name != "self"})
            derived.set_progress_bar_config(disable=True)  # progress goes to the job (see engine.generate)
            self._pipelines[cls] = derived
        return self._pipelines[cls]


# --- architecture ---------------------------------------------------------------------------------


def _recognised(sd: Mapping[str, torch.Tensor]) -> list[str]:
    parts = []
    if _UNET_PROBE in sd:
        kind = "SDXL-style UNet" if _SDXL_LABEL in sd else "SD UNet"
        parts.append(f"{kind} with {sd[_UNET_PROBE].shape[1]} input channels")
    if _VAE_PROBE in sd:
        parts.append("VAE")
    names = {"text_encoder": "CLIP ViT-L", "text_encoder_2": "OpenCLIP"}
    for (family, component), key in _TEXT_PROBES.items():
        if key in sd:
            encoder = "OpenCLIP" if family == "sd2" else names[component]
            parts.append(f"{encoder} text encoder in the {family.upper()} layout")
    if _REFINER_PROBE in sd:
        parts.append("OpenCLIP text encoder in the SDXL-refiner layout")
    return parts


def _unknown(sd: Mapping[str, torch.Tensor], why: str) -> ModelLoadError:
    parts = _recognised(sd)
    found = "; ".join(parts) if parts else f"none of its {len(sd)} tensors (e.g. {', '.join(list(sd)[:3])})"
    return ModelLoadError(f"unknown architecture ({why}); recognised: {found}")


def _text_width(sd: Mapping[str, torch.Tensor], family: Family) -> int:
    return sum(sd[key].shape[1] for (f, _), key in _TEXT_PROBES.items() if f == family)


def _family(sd: Mapping[str, torch.Tensor]) -> Family:
    if _UNET_PROBE not in sd or _VAE_PROBE not in sd:
        raise _unknown(sd, "a Stable Diffusion checkpoint has a UNet and a VAE")
    has_label = _SDXL_LABEL in sd
    for family in ("sdxl", "sd2", "sd1"):
        probes = [key for (f, _), key in _TEXT_PROBES.items() if f == family]
        if all(key in sd for key in probes) and has_label == (family == "sdxl"):
            break
    else:
        raise _unknown(sd, "the text encoders match no SD1, SD2 or SDXL layout")
    context = next(
        (sd[k].shape[1] for k in sd if k.startswith(L.UNET_PREFIX) and k.endswith("attn2.to_k.weight")), None
    )
    if context != _text_width(sd, family):
        raise _unknown(sd, f"the UNet's text width {context} does not match the text encoders")
    if sd[_UNET_PROBE].shape[1] not in (4, 9):
        raise _unknown(sd, f"the UNet takes {sd[_UNET_PROBE].shape[1]} input channels, not 4 or 9")
    return family


def _is_inpainting(sd: Mapping[str, torch.Tensor]) -> bool:
    """An inpainting UNet's input conv takes 9 channels: latents, mask, masked-image latents."""
    return sd[_UNET_PROBE].shape[1] == 9


def _parse_prediction(value: str) -> PredictionType | None:
    value = value.strip().lower()
    if value in ("v", "v_prediction", "v-prediction"):
        return "v_prediction"
    if value in ("eps", "epsilon"):
        return "epsilon"
    return None


def _prediction_hint(
    sd: Mapping[str, torch.Tensor], metadata: Mapping[str, str], sidecar: Path | None
) -> PredictionType | None:
    """What the files say about the prediction type: an A1111 sidecar <stem>.yaml, the safetensors
    metadata (modelspec), or a `v_pred` marker tensor; None when they say nothing."""
    if sidecar is not None and sidecar.is_file():
        try:
            config = yaml.safe_load(sidecar.read_text(encoding="utf-8"))
            params = config["model"]["params"]
        except (yaml.YAMLError, OSError, UnicodeDecodeError, KeyError, TypeError) as exc:
            raise ModelLoadError(f"{sidecar.name}: not a readable model config ({exc})") from None
        return "v_prediction" if str(params.get("parameterization", "eps")) == "v" else "epsilon"
    hint = _parse_prediction(metadata.get("modelspec.prediction_type", ""))
    if hint is None and "v_pred" in sd:
        hint = "v_prediction"
    return hint


@torch.no_grad()
def answers_like_v_model(unet: UNet2DConditionModel) -> bool:
    """A v-prediction model, asked about a flat 0.5 latent at the last timestep with an empty context,
    predicts roughly -x (the clean image's velocity); an epsilon model predicts noise around 0."""
    weight = unet.conv_in.weight
    x = torch.full((1, unet.config.in_channels, 8, 8), 0.5, device=weight.device, dtype=weight.dtype)
    context = torch.zeros(1, 77, unet.config.cross_attention_dim, device=weight.device, dtype=weight.dtype)
    timestep = torch.tensor([999], device=weight.device)
    out = unet(x, timestep, encoder_hidden_states=context).sample
    return (out.float() - 0.5).mean().item() < -1.0


def _default_size(family: Family, prediction_type: PredictionType) -> int:
    if family == "sdxl":
        return 1024
    return 768 if family == "sd2" and prediction_type == "v_prediction" else 512


def detect_architecture(
    state_dict: Mapping[str, torch.Tensor],
    metadata: Mapping[str, str] | None = None,
    sidecar: Path | None = None,
    unet: UNet2DConditionModel | None = None,
) -> Architecture:
    """Family from the tensors; prediction type from the sidecar yaml / metadata, else (SD2 only) from
    how the UNet answers (`unet`: an already loaded UNet of this state dict, built here when None)."""
    family = _family(state_dict)
    prediction = _prediction_hint(state_dict, metadata or {}, sidecar)
    if prediction is None and family == "sd2":
        if unet is None:
            fitted = _fit_configs(state_dict, "sd2", "sd2")
            unet = _build(
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
        inpainting=_is_inpainting(state_dict),
        default_size=_default_size(family, prediction or "epsilon"),
        zero_terminal_snr="ztsnr" in state_dict,
    )


# --- building components --------------------------------------------------------------------------


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(
            f"bundled config {path} is missing or broken ({exc}); reinstall the web UI"
        ) from None


def _text_components(family: Family) -> dict[str, tuple[str, Callable[..., L.Layout], bool]]:
    """component -> (LDM prefix, layout function, is OpenCLIP)."""
    if family == "sd1":
        return {"text_encoder": (L.SD1_CLIP_PREFIX, L.clip_layout, False)}
    if family == "sd2":
        return {"text_encoder": (L.SD2_CLIP_PREFIX, L.open_clip_layout, True)}
    return {
        "text_encoder": (L.SDXL_CLIP_L_PREFIX, L.clip_layout, False),
        "text_encoder_2": (L.SDXL_CLIP_G_PREFIX, L.open_clip_layout, True),
    }


def _fit_configs(
    sd: Mapping[str, torch.Tensor], config_name: str, family: Family
) -> dict[str, dict[str, Any]]:
    """The bundled configs of `config_name` with their shape-derived fields read from the state dict."""
    folder = CONFIGS / config_name
    try:
        vae = L.fit_vae_config(sd, _read_json(folder / "vae" / "config.json"))
        fitted = {"vae": vae}
        for component, (prefix, _, open_clip) in _text_components(family).items():
            base = _read_json(folder / component / "config.json")
            fitted[component] = (
                L.fit_open_clip_config(sd, base, prefix, skip_last_layer=family == "sd2")
                if open_clip
                else L.fit_clip_config(sd, base, prefix)
            )
        pooled = fitted["text_encoder_2"]["projection_dim"] if family == "sdxl" else None
        vae_scale = 2 ** (len(vae["block_out_channels"]) - 1)
        size = _default_size(family, "v_prediction" if config_name == "sd2-v" else "epsilon")
        fitted["unet"] = L.fit_unet_config(
            sd, _read_json(folder / "unet" / "config.json"), size // vae_scale, pooled
        )
    except (KeyError, IndexError, StopIteration, ValueError) as exc:
        raise ModelLoadError(f"the {family.upper()} tensors are not laid out as expected ({exc})") from None
    return fitted


def _build(
    cls: Any,
    config: dict[str, Any],
    sd: Mapping[str, torch.Tensor],
    layout_of: Callable[..., L.Layout],
    what: str,
    device: torch.device,
    dtype: torch.dtype,
    layout_args: tuple[Any, ...] = (),
) -> Any:
    """Instantiate on the meta device, then take every weight from the file (no random init, no copy
    beyond the device/dtype move)."""
    try:
        with init_empty_weights():
            if issubclass(cls, CLIPTextModel | CLIPTextModelWithProjection):
                model = cls(CLIPTextConfig.from_dict(config))
            else:
                model = cls.from_config(config)
    except (ValueError, TypeError, RuntimeError) as exc:  # e.g. widths that do not divide into groups
        raise ModelLoadError(f"the {what} cannot be built with the file's shapes: {exc}") from None
    tensors, missing = L.from_ldm(sd, layout_of(model.state_dict().keys(), *layout_args))
    if missing:
        raise ModelLoadError(
            f"the {what} is incomplete: {len(missing)} tensors missing, e.g. {', '.join(missing[:3])}"
        )
    return fill_module(model, tensors, device, dtype, f"the {what}")


def fill_module(
    model: torch.nn.Module,
    tensors: dict[str, torch.Tensor],
    device: torch.device,
    dtype: torch.dtype,
    what: str,
) -> Any:
    """`model` (built on the meta device) holding exactly `tensors`, ready for inference.

    `what` names the model in the error ("the UNet", "x.safetensors: the ControlNet")."""
    # convert tensor by tensor (Module.to(dtype) would copy whole models and diffusers warns about it)
    tensors = {
        k: v.to(device=device, dtype=dtype if v.is_floating_point() else v.dtype) for k, v in tensors.items()
    }
    try:
        model.load_state_dict(tensors, strict=True, assign=True)
    except RuntimeError as exc:
        raise ModelLoadError(f"{what} weights do not fit its architecture: {exc}") from None
    return model.to(device).eval().requires_grad_(False)  # moves the buffers that are not in the file


def _rebuild_unet(unet: UNet2DConditionModel, config: dict[str, Any]) -> UNet2DConditionModel:
    """The same weights under another config (SD2-v's upcast attention); tensors are shared, not copied."""
    with init_empty_weights():
        rebuilt = UNet2DConditionModel.from_config(config)
    rebuilt.load_state_dict(unet.state_dict(), strict=True, assign=True)
    return rebuilt.eval().requires_grad_(False)


def _tokenizer(folder: Path, vocab_size: int) -> CLIPTokenizer:
    settings = _read_json(folder / "tokenizer_config.json")
    tokenizer = CLIPTokenizer.from_pretrained(
        TOKENIZER_DIR,
        local_files_only=True,
        pad_token=settings["pad_token"],
        model_max_length=settings["model_max_length"],
    )
    # transformers silently falls back to a 2-token vocabulary when files are missing
    special = (tokenizer.bos_token_id, tokenizer.eos_token_id)
    if len(tokenizer) != CLIP_VOCAB_SIZE or special != (START_TOKEN, END_TOKEN):
        raise ModelLoadError(
            f"bundled CLIP tokenizer in {TOKENIZER_DIR} is broken ({len(tokenizer)} tokens); reinstall"
        )
    if vocab_size != CLIP_VOCAB_SIZE:
        raise ModelLoadError(
            f"the text encoder has {vocab_size} token embeddings, the CLIP tokenizer {CLIP_VOCAB_SIZE}"
        )
    return tokenizer


def _unused(sd: Mapping[str, torch.Tensor], used: set[str], family: Family) -> list[str]:
    surplus = [k for k in sd if k not in used and not _IGNORED.fullmatch(k)]
    if family == "sd2":
        # SD2 conditions on the penultimate OpenCLIP block: the last one and the projection go unused
        last = L.count_indices(sd, f"{L.SD2_CLIP_PREFIX}transformer.resblocks.") - 1
        unused_tail = (
            f"{L.SD2_CLIP_PREFIX}transformer.resblocks.{last}.",
            f"{L.SD2_CLIP_PREFIX}text_projection",
        )
        surplus = [k for k in surplus if not k.startswith(unused_tail)]
    return surplus


def _scheduler(architecture: Architecture) -> Any:
    config = _read_json(CONFIGS / architecture.config_name / "scheduler" / "scheduler_config.json")
    config["prediction_type"] = architecture.prediction_type
    if architecture.zero_terminal_snr:
        config["trained_betas"] = zero_terminal_snr_betas(config)
    return getattr(diffusers_schedulers, config["_class_name"]).from_config(config)


def _assemble(
    sd: Mapping[str, torch.Tensor], family: Family, config_name: str, device: torch.device, dtype: torch.dtype
) -> tuple[dict[str, Any], set[str]]:
    """All model components of the family, plus the LDM keys they consumed."""
    fitted = _fit_configs(sd, config_name, family)
    folder = CONFIGS / config_name
    parts: dict[str, Any] = {
        "unet": _build(UNet2DConditionModel, fitted["unet"], sd, L.unet_layout, "UNet", device, dtype),
        "vae": _build(AutoencoderKL, fitted["vae"], sd, L.vae_layout, "VAE", device, dtype),
    }
    used = {slot.key for slot in L.unet_layout(parts["unet"].state_dict().keys()).values()}
    used |= {slot.key for slot in L.vae_layout(parts["vae"].state_dict().keys()).values()}
    for component, (prefix, layout_of, _) in _text_components(family).items():
        config = fitted[component]
        cls = (
            CLIPTextModelWithProjection
            if config["architectures"] == ["CLIPTextModelWithProjection"]
            else CLIPTextModel
        )
        encoder = _build(cls, config, sd, layout_of, f"text encoder ({component})", device, dtype, (prefix,))
        used |= {slot.key for slot in layout_of(encoder.state_dict().keys(), prefix).values()}
        parts[component] = encoder
        tokenizer_name = component.replace("text_encoder", "tokenizer")
        parts[tokenizer_name] = _tokenizer(folder / tokenizer_name, config["vocab_size"])
    return parts, used


def load_checkpoint(path: str | Path, device: torch.device, dtype: torch.dtype) -> LoadedCheckpoint:
    """Load an SD1/SD2/SDXL single-file checkpoint into a complete pipeline on `device` in `dtype`.

    Offline: only the bundled configs and tokenizer files are read besides the checkpoint (and its
    A1111-style sidecar <stem>.yaml, which may declare v-prediction)."""
    path = Path(path)
    sd = read_state_dict(path)
    metadata = read_metadata(path)
    sidecar = path.with_suffix(".yaml")
    try:
        family = _family(sd)
        hint = _prediction_hint(sd, metadata, sidecar)
        config_name = _config_name(family, hint or "epsilon", _is_inpainting(sd))
        parts, used = _assemble(sd, family, config_name, device, dtype)
        surplus = _unused(sd, used, family)
        if surplus:
            raise ModelLoadError(
                f"{len(surplus)} tensors belong to no component, e.g. {', '.join(surplus[:3])}"
            )
        architecture = detect_architecture(sd, metadata, sidecar, unet=parts["unet"])
        if architecture.config_name != config_name:  # the UNet's answer showed SD2 v-prediction
            unet_config = _fit_configs(sd, architecture.config_name, family)["unet"]
            parts["unet"] = _rebuild_unet(parts["unet"], unet_config)
    except ModelLoadError as exc:
        raise ModelLoadError(f"{path.name}: {exc}") from None
    scheduler = _scheduler(architecture)
    index = _read_json(CONFIGS / architecture.config_name / "model_index.json")
    if family == "sdxl":
        flags = ("force_zeros_for_empty_prompt", "requires_aesthetics_score")
        options = {key: index[key] for key in flags if key in index} | {"add_watermarker": False}
    else:
        options = {"safety_checker": None, "feature_extractor": None, "requires_safety_checker": False}
    pipe = getattr(diffusers, index["_class_name"])(**parts, scheduler=scheduler, **options)
    defaults = read_defaults(metadata, architecture.default_size, path.name)
    return LoadedCheckpoint(path=path, architecture=architecture, pipe=pipe, defaults=defaults)
