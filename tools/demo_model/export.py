"""Write the trained models in the formats users' files come in.

- checkpoint: one .safetensors in the A1111/LDM single-file layout (webui.engine.checkpoints.ldm_layout),
  fp16, with safetensors metadata that tells the loader v-prediction and the model's native size;
- ControlNet: the original (lllyasviel) single-file layout, every key under `control_model.` (written by
  webui.engine.controlnet.layout, which reads it back);
- LoRA: kohya's format (`lora_unet_<diffusers module path>.lora_down/lora_up.weight`, `.alpha`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import torch
from diffusers import AutoencoderKL, ControlNetModel, UNet2DConditionModel
from peft.utils import get_peft_model_state_dict
from safetensors.torch import save_file
from transformers import CLIPTextModel

from webui.engine.checkpoints.ldm_export import pipeline_to_ldm_state_dict
from webui.engine.controlnet.layout import to_original

CHECKPOINT_NAME = "demo-shapes.safetensors"
CONTROLNET_NAME = "demo-shapes-canny.safetensors"
LORA_NAME = "demo-pastel.safetensors"
NATIVE_SIZE = 64
# what the UI should open with for this model (see the loader notes in README.md); CFG Rescale 0.7 (Lin et
# al.'s value), because under plain CFG 7 this model burns small shapes' colours
DEFAULT_PARAMS = {
    "width": NATIVE_SIZE,
    "height": NATIVE_SIZE,
    "steps": 20,
    "cfg_scale": 7.0,
    "cfg_rescale": 0.7,
}
_MODELSPEC_PREDICTION = {"v_prediction": "v", "epsilon": "epsilon"}


@dataclass(frozen=True)
class ExportedFiles:
    checkpoint: Path
    controlnet: Path
    lora: Path

    @classmethod
    def under(cls, models_dir: Path) -> ExportedFiles:
        """The files' places in a web UI models folder (A1111's folder names)."""
        return cls(
            models_dir / "Stable-diffusion" / CHECKPOINT_NAME,
            models_dir / "ControlNet" / CONTROLNET_NAME,
            models_dir / "Lora" / LORA_NAME,
        )


def _save(tensors: Mapping[str, torch.Tensor], path: Path, metadata: Mapping[str, str]) -> Path:
    """Atomically: a half-written file is never listed by the web UI."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(temporary), dict(metadata))
    os.replace(temporary, path)
    return path


def _half(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """fp16 copies of the floating-point tensors (half the file; the loader converts back)."""
    return {k: v.to(torch.float16) if v.is_floating_point() else v for k, v in state.items()}


# --- checkpoint -----------------------------------------------------------------------------------


def checkpoint_metadata(prediction_type: str) -> dict[str, str]:
    return {
        "modelspec.sai_model_spec": "1.0.0",
        "modelspec.architecture": "stable-diffusion-v1",
        "modelspec.title": "Demo shapes (tiny SD 1.x)",
        "modelspec.description": "Coloured shapes on plain backgrounds, trained from scratch by "
        "tools/train_demo_model.py. Prompt e.g. 'a large red circle on the left, blue background'.",
        "modelspec.resolution": f"{NATIVE_SIZE}x{NATIVE_SIZE}",
        "modelspec.prediction_type": _MODELSPEC_PREDICTION[prediction_type],
        "webui.default_params": json.dumps(DEFAULT_PARAMS),
    }


def export_checkpoint(
    path: Path,
    vae: AutoencoderKL,
    unet: UNet2DConditionModel,
    text_encoder: CLIPTextModel,
    prediction_type: str,
    zero_terminal_snr: bool,
) -> Path:
    """The SD1 single file (fp16) that the web UI's loader reads like any SD 1.5 checkpoint; a
    zero-terminal-SNR model carries the `ztsnr` marker tensor (ComfyUI's and NoobAI's convention)."""
    parts = SimpleNamespace(vae=vae, unet=unet, text_encoder=text_encoder)
    tensors = _half(pipeline_to_ldm_state_dict(parts, family="sd1"))
    if zero_terminal_snr:
        tensors["ztsnr"] = torch.tensor([])
    return _save(tensors, path, {"format": "pt", **checkpoint_metadata(prediction_type)})


# --- ControlNet -----------------------------------------------------------------------------------


def export_controlnet(path: Path, controlnet: ControlNetModel) -> Path:
    """The original layout, written by the web UI's own ControlNet converter (which reads it back)."""
    metadata = {
        "format": "pt",
        "modelspec.architecture": "stable-diffusion-v1/controlnet",
        "modelspec.title": "Demo shapes canny ControlNet",
        "modelspec.description": "Canny-edge ControlNet for the demo shapes model (white edges on black).",
    }
    return _save(to_original(_half(controlnet.state_dict())), path, metadata)


# --- LoRA -----------------------------------------------------------------------------------------


def lora_to_kohya(peft_state: Mapping[str, torch.Tensor], alpha: float) -> dict[str, torch.Tensor]:
    """peft's UNet LoRA state dict -> kohya names (`lora_unet_` + the diffusers module path with `_`)."""
    kohya: dict[str, torch.Tensor] = {}
    for key, tensor in peft_state.items():
        module, _, rest = key.partition(".lora_")
        side = {"A.weight": "lora_down.weight", "B.weight": "lora_up.weight"}.get(rest)
        if side is None:
            raise ValueError(f"unexpected LoRA tensor {key!r}")
        name = "lora_unet_" + module.replace(".", "_")
        kohya[f"{name}.{side}"] = tensor
        kohya[f"{name}.alpha"] = torch.tensor(float(alpha))
    return kohya


def export_lora(path: Path, unet: UNet2DConditionModel) -> Path:
    """The UNet's peft adapter as a kohya LoRA, fp16."""
    config = unet.peft_config["default"]
    rank, alpha = config.r, config.lora_alpha
    state = {k: v.to(torch.float16) for k, v in get_peft_model_state_dict(unet).items()}
    metadata = {
        "ss_network_module": "networks.lora",
        "ss_network_dim": str(rank),
        "ss_network_alpha": str(alpha),
        "ss_base_model_version": "sd_v1",
        "ss_output_name": Path(LORA_NAME).stem,
        "modelspec.architecture": "stable-diffusion-v1/lora",
        "modelspec.title": "Demo pastel style",
        "modelspec.description": "Turns the demo shapes model's colours pastel. Use <lora:demo-pastel:1>.",
    }
    return _save(lora_to_kohya(state, alpha), path, metadata)
