"""What a single-file checkpoint is (probing): the family (SD1, SD2, SDXL) from the tensors' names and
shapes, never from the file name; inpainting from the UNet's input channels; the prediction type from an
A1111 sidecar yaml, the safetensors metadata or a marker tensor, else (SD2) from how the UNet answers
(engine.checkpoints.loader.detect_architecture). Unknown files fail naming what was recognised.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import torch
import yaml

from webui.core.errors import ModelLoadError
from webui.engine.checkpoints import ldm_layout as L

if TYPE_CHECKING:
    from diffusers import UNet2DConditionModel

Family = Literal["sd1", "sd2", "sdxl"]
PredictionType = Literal["epsilon", "v_prediction"]

_UNET_PROBE = L.UNET_PREFIX + "input_blocks.0.0.weight"
_SDXL_LABEL = L.UNET_PREFIX + "label_emb.0.0.weight"
_VAE_PROBE = L.VAE_PREFIX + "encoder.conv_in.weight"
_TEXT_PROBES = {  # token embedding of each text encoder, by (family, component)
    ("sd1", "text_encoder"): L.SD1_CLIP_PREFIX + "text_model.embeddings.token_embedding.weight",
    ("sd2", "text_encoder"): L.SD2_CLIP_PREFIX + "token_embedding.weight",
    ("sdxl", "text_encoder"): L.SDXL_CLIP_L_PREFIX + "text_model.embeddings.token_embedding.weight",
    ("sdxl", "text_encoder_2"): L.SDXL_CLIP_G_PREFIX + "token_embedding.weight",
}
# An SDXL refiner has one text encoder, OpenCLIP ViT-bigG, as the first embedder
_REFINER_PROBE = L.SDXL_REFINER_CLIP_PREFIX + "token_embedding.weight"


@dataclass(frozen=True)
class Architecture:
    family: Family
    prediction_type: PredictionType
    inpainting: bool  # UNet takes 9 input channels (latents + mask + masked image)
    default_size: int  # the side length, in pixels, the model was trained for
    # trained with a zero-terminal-SNR schedule (a `ztsnr` marker tensor, as ComfyUI and NoobAI use)
    zero_terminal_snr: bool = False
    # an SDXL refiner: OpenCLIP-G alone, a UNet conditioned on aesthetic scores (img2img pipeline)
    refiner: bool = False

    @property
    def config_name(self) -> str:
        """The bundled config folder (configs/<name>) this architecture uses."""
        return bundled_config_name(self.family, self.prediction_type, self.inpainting, self.refiner)


def bundled_config_name(
    family: Family, prediction_type: PredictionType, inpainting: bool, refiner: bool = False
) -> str:
    if refiner:
        return "sdxl-refiner"
    if inpainting:
        return f"{family}-inpaint"  # the family's config with a 9-channel UNet and the inpaint pipeline
    return "sd2-v" if family == "sd2" and prediction_type == "v_prediction" else family


def recognised(sd: Mapping[str, torch.Tensor]) -> list[str]:
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
    parts = recognised(sd)
    found = "; ".join(parts) if parts else f"none of its {len(sd)} tensors (e.g. {', '.join(list(sd)[:3])})"
    return ModelLoadError(f"unknown architecture ({why}); recognised: {found}")


def _text_width(sd: Mapping[str, torch.Tensor], family: Family) -> int:
    if is_refiner(sd):
        return int(sd[_REFINER_PROBE].shape[1])
    return sum(sd[key].shape[1] for (f, _), key in _TEXT_PROBES.items() if f == family)


def is_refiner(sd: Mapping[str, torch.Tensor]) -> bool:
    """An SDXL refiner: the SDXL UNet layout (a label embedding) with OpenCLIP-G as its only text encoder."""
    return _SDXL_LABEL in sd and _REFINER_PROBE in sd and _TEXT_PROBES["sdxl", "text_encoder"] not in sd


def family_of(sd: Mapping[str, torch.Tensor]) -> Family:
    if _UNET_PROBE not in sd or _VAE_PROBE not in sd:
        raise _unknown(sd, "a Stable Diffusion checkpoint has a UNet and a VAE")
    has_label = _SDXL_LABEL in sd
    families: tuple[Family, ...] = ("sdxl", "sd2", "sd1")
    for family in families:
        if family == "sdxl" and is_refiner(sd):
            break
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


def is_inpainting(sd: Mapping[str, torch.Tensor]) -> bool:
    """An inpainting UNet's input conv takes 9 channels: latents, mask, masked-image latents."""
    return sd[_UNET_PROBE].shape[1] == 9


def _parse_prediction(value: str) -> PredictionType | None:
    value = value.strip().lower()
    if value in ("v", "v_prediction", "v-prediction"):
        return "v_prediction"
    if value in ("eps", "epsilon"):
        return "epsilon"
    return None


def prediction_hint(
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


def default_size(family: Family, prediction_type: PredictionType) -> int:
    if family == "sdxl":
        return 1024
    return 768 if family == "sd2" and prediction_type == "v_prediction" else 512
