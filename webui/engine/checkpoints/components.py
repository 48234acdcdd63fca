"""Building a checkpoint's diffusers components from its LDM state dict, offline: the bundled configs
(configs/) with their shape-derived fields fitted to the file (engine.checkpoints.ldm_configs), each
module built on the meta device and filled with the file's tensors. Every weight of every component must
come from the file (strict): a missing, surplus or misshapen tensor is a ModelLoadError, never a silently
random weight.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from webui.core.errors import ModelLoadError
from webui.engine.checkpoints import ldm_configs
from webui.engine.checkpoints import ldm_layout as L
from webui.engine.checkpoints.architecture import Architecture, Family, default_size
from webui.engine.checkpoints.weights_files import shapes_of
from webui.engine.sampling.schedulers import zero_terminal_snr_betas

if TYPE_CHECKING:  # diffusers and transformers are imported when a model is built, not with the page
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTokenizer

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
# one vocabulary for all; the family folders only set the pad token
TOKENIZER_DIR = CONFIGS / "clip_tokenizer"
CLIP_VOCAB_SIZE = 49408
START_TOKEN, END_TOKEN = 49406, 49407

# Tensors real checkpoints carry that no diffusers component uses: the DDPM schedule buffers, EMA copies,
# CLIP's position ids and logit scales, and markers some trainers add.
_IGNORED = re.compile(
    r"(betas|alphas_cumprod(_prev)?|sqrt_(one_minus_)?alphas_cumprod|log_one_minus_alphas_cumprod"
    r"|sqrt_recip(m1)?_alphas_cumprod|posterior_\w+|logvar|v_pred|ztsnr|model_ema\..+|denoiser\..+|edm_vpred\..+"
    r"|.+\.position_ids|.+\.logit_scale)"
)


def read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(
            f"bundled config {path} is missing or broken ({exc}); reinstall the web UI"
        ) from None


def text_components(
    family: Family, refiner: bool = False
) -> dict[str, tuple[str, Callable[..., L.Layout], bool]]:
    """component -> (LDM prefix, layout function, is OpenCLIP). An SDXL refiner has only the second."""
    if refiner:
        return {"text_encoder_2": (L.SDXL_REFINER_CLIP_PREFIX, L.open_clip_layout, True)}
    if family == "sd1":
        return {"text_encoder": (L.SD1_CLIP_PREFIX, L.clip_layout, False)}
    if family == "sd2":
        return {"text_encoder": (L.SD2_CLIP_PREFIX, L.open_clip_layout, True)}
    return {
        "text_encoder": (L.SDXL_CLIP_L_PREFIX, L.clip_layout, False),
        "text_encoder_2": (L.SDXL_CLIP_G_PREFIX, L.open_clip_layout, True),
    }


def is_refiner_config(config_name: str) -> bool:
    return config_name == "sdxl-refiner"


def fit_configs(
    sd: Mapping[str, torch.Tensor], config_name: str, family: Family
) -> dict[str, dict[str, Any]]:
    """The bundled configs of `config_name` with their shape-derived fields read from the state dict."""
    folder = CONFIGS / config_name
    try:
        vae = ldm_configs.fit_vae_config(sd, read_json(folder / "vae" / "config.json"))
        fitted = {"vae": vae}
        for component, (prefix, _, open_clip) in text_components(
            family, is_refiner_config(config_name)
        ).items():
            base = read_json(folder / component / "config.json")
            fitted[component] = (
                ldm_configs.fit_open_clip_config(sd, base, prefix, skip_last_layer=family == "sd2")
                if open_clip
                else ldm_configs.fit_clip_config(sd, base, prefix)
            )
        pooled = fitted["text_encoder_2"]["projection_dim"] if family == "sdxl" else None
        vae_scale = 2 ** (len(vae["block_out_channels"]) - 1)
        size = default_size(family, "v_prediction" if config_name == "sd2-v" else "epsilon")
        fitted["unet"] = ldm_configs.fit_unet_config(
            sd,
            read_json(folder / "unet" / "config.json"),
            size // vae_scale,
            pooled,
            time_ids=5 if is_refiner_config(config_name) else 6,
        )
    except (KeyError, IndexError, StopIteration, ValueError) as exc:
        raise ModelLoadError(f"the {family.upper()} tensors are not laid out as expected ({exc})") from None
    return fitted


def build_module(
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
    from accelerate import init_empty_weights
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    try:
        with init_empty_weights():
            if issubclass(cls, CLIPTextModel | CLIPTextModelWithProjection):
                model = cls(CLIPTextConfig.from_dict(config))
            else:
                model = cls.from_config(config)
    except (ValueError, TypeError, RuntimeError) as exc:  # e.g. widths that do not divide into groups
        raise ModelLoadError(f"the {what} cannot be built with the file's shapes: {exc}") from None
    tensors, missing = L.from_ldm(
        sd, layout_of(model.state_dict().keys(), *layout_args), converter(device, dtype)
    )
    if missing:
        raise ModelLoadError(
            f"the {what} is incomplete: {len(missing)} tensors missing, e.g. {', '.join(missing[:3])}"
        )
    return fill_module(model, tensors, device, dtype, f"the {what}")


def converter(device: torch.device, dtype: torch.dtype) -> Callable[[torch.Tensor], torch.Tensor]:
    """One tensor to the target device, floating-point ones to `dtype` (integer buffers keep theirs)."""

    def convert(tensor: torch.Tensor) -> torch.Tensor:
        return tensor.to(device=device, dtype=dtype if tensor.is_floating_point() else tensor.dtype)

    return convert


def fill_module(
    model: torch.nn.Module,
    tensors: dict[str, torch.Tensor],
    device: torch.device,
    dtype: torch.dtype,
    what: str,
) -> Any:
    """`model` (built on the meta device) holding exactly `tensors`, ready for inference.

    `what` names the model in the error ("the UNet", "x.safetensors: the ControlNet")."""
    # tensor by tensor (Module.to(dtype) would copy whole models and diffusers warns about it); a no-op for
    # tensors from_ldm already converted
    convert = converter(device, dtype)
    tensors = {k: convert(v) for k, v in tensors.items()}
    try:
        model.load_state_dict(tensors, strict=True, assign=True)
    except RuntimeError as exc:
        raise ModelLoadError(f"{what} weights do not fit its architecture: {exc}") from None
    return model.to(device).eval().requires_grad_(False)  # moves the buffers that are not in the file


def rebuild_unet(unet: UNet2DConditionModel, config: dict[str, Any]) -> UNet2DConditionModel:
    """The same weights under another config (SD2-v's upcast attention); tensors are shared, not copied."""
    from accelerate import init_empty_weights
    from diffusers import UNet2DConditionModel

    with init_empty_weights():
        rebuilt = UNet2DConditionModel.from_config(config)
    rebuilt.load_state_dict(unet.state_dict(), strict=True, assign=True)
    return rebuilt.eval().requires_grad_(False)


def clip_tokenizer(folder: Path, vocab_size: int) -> CLIPTokenizer:
    from transformers import CLIPTokenizer

    settings = read_json(folder / "tokenizer_config.json")
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


def unused_tensors(sd: Mapping[str, torch.Tensor], used: set[str], family: Family) -> list[str]:
    surplus = [k for k in sd if k not in used and not _IGNORED.fullmatch(k)]
    if family == "sd2":
        # SD2 conditions on the penultimate OpenCLIP block: the last one and the projection go unused
        last = ldm_configs.count_indices(sd, f"{L.SD2_CLIP_PREFIX}transformer.resblocks.") - 1
        unused_tail = (
            f"{L.SD2_CLIP_PREFIX}transformer.resblocks.{last}.",
            f"{L.SD2_CLIP_PREFIX}text_projection",
        )
        surplus = [k for k in surplus if not k.startswith(unused_tail)]
    return surplus


def base_scheduler(architecture: Architecture) -> Any:
    from diffusers import schedulers as diffusers_schedulers

    config = read_json(CONFIGS / architecture.config_name / "scheduler" / "scheduler_config.json")
    config["prediction_type"] = architecture.prediction_type
    if architecture.zero_terminal_snr:
        config["trained_betas"] = zero_terminal_snr_betas(config)
    return getattr(diffusers_schedulers, config["_class_name"]).from_config(config)


def assemble(
    sd: Mapping[str, torch.Tensor], family: Family, config_name: str, device: torch.device, dtype: torch.dtype
) -> tuple[dict[str, Any], set[str]]:
    """All model components of the family, plus the LDM keys they consumed."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    fitted = fit_configs(shapes_of(sd), config_name, family)
    folder = CONFIGS / config_name
    parts: dict[str, Any] = {
        "unet": build_module(UNet2DConditionModel, fitted["unet"], sd, L.unet_layout, "UNet", device, dtype),
        "vae": build_module(AutoencoderKL, fitted["vae"], sd, L.vae_layout, "VAE", device, dtype),
    }
    used = {slot.key for slot in L.unet_layout(parts["unet"].state_dict().keys()).values()}
    used |= {slot.key for slot in L.vae_layout(parts["vae"].state_dict().keys()).values()}
    for component, (prefix, layout_of, _) in text_components(family, is_refiner_config(config_name)).items():
        config = fitted[component]
        cls = (
            CLIPTextModelWithProjection
            if config["architectures"] == ["CLIPTextModelWithProjection"]
            else CLIPTextModel
        )
        encoder = build_module(
            cls, config, sd, layout_of, f"text encoder ({component})", device, dtype, (prefix,)
        )
        used |= {slot.key for slot in layout_of(encoder.state_dict().keys(), prefix).values()}
        parts[component] = encoder
        tokenizer_name = component.replace("text_encoder", "tokenizer")
        parts[tokenizer_name] = clip_tokenizer(folder / tokenizer_name, config["vocab_size"])
    return parts, used
