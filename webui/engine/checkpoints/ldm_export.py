"""Whole SD1/SD2/SDXL diffusers pipelines written in the original single-file layout (as A1111 and
civitai use): test fixtures, the demo model. The loader reads them back through the same layouts.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from webui.engine.checkpoints.ldm_layout import (
    SD1_CLIP_PREFIX,
    SD2_CLIP_PREFIX,
    SDXL_CLIP_G_PREFIX,
    SDXL_CLIP_L_PREFIX,
    SDXL_REFINER_CLIP_PREFIX,
    clip_layout,
    open_clip_layout,
    to_ldm,
    unet_layout,
    vae_layout,
)

OPEN_CLIP_LOGIT_SCALE = math.log(100.0)  # the value trained OpenCLIP models end with


def _family(pipe: Any) -> str:
    if getattr(pipe, "text_encoder_2", None) is not None and pipe.text_encoder is None:
        return "sdxl-refiner"
    if getattr(pipe, "text_encoder_2", None) is not None:
        return "sdxl"
    # OpenAI's CLIP (SD1) uses quick_gelu, OpenCLIP's ViT-H (SD2) plain gelu
    return "sd2" if pipe.text_encoder.config.hidden_act == "gelu" else "sd1"


def _position_ids(text_encoder: Any, prefix: str) -> dict[str, torch.Tensor]:
    positions = text_encoder.config.max_position_embeddings
    return {f"{prefix}text_model.embeddings.position_ids": torch.arange(positions).unsqueeze(0)}


def _sd2_unused_tail(text_encoder: Any, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """What SD2 files hold beyond diffusers' encoder: the last OpenCLIP block (unused: SD2 conditions on the
    penultimate one; written as an identity block), the text projection and logit scale of the CLIP model."""
    cfg = text_encoder.config
    width, inner = cfg.hidden_size, cfg.intermediate_size
    block = f"{SD2_CLIP_PREFIX}transformer.resblocks.{cfg.num_hidden_layers}."
    zeros = {
        "attn.in_proj_weight": (3 * width, width),
        "attn.in_proj_bias": (3 * width,),
        "attn.out_proj.weight": (width, width),
        "attn.out_proj.bias": (width,),
        "ln_1.bias": (width,),
        "ln_2.bias": (width,),
        "mlp.c_fc.weight": (inner, width),
        "mlp.c_fc.bias": (inner,),
        "mlp.c_proj.weight": (width, inner),
        "mlp.c_proj.bias": (width,),
    }
    tail = {block + name: torch.zeros(shape, dtype=dtype) for name, shape in zeros.items()}
    tail |= {
        block + "ln_1.weight": torch.ones(width, dtype=dtype),
        block + "ln_2.weight": torch.ones(width, dtype=dtype),
    }
    tail[f"{SD2_CLIP_PREFIX}text_projection"] = torch.eye(width, dtype=dtype)
    tail[f"{SD2_CLIP_PREFIX}logit_scale"] = torch.tensor(OPEN_CLIP_LOGIT_SCALE, dtype=dtype)
    return tail


def pipeline_to_ldm_state_dict(pipe: Any, family: str | None = None) -> dict[str, torch.Tensor]:
    """All weights of an SD1/SD2/SDXL diffusers pipeline in the single-file layout of the original models.

    `family` ("sd1" | "sd2" | "sdxl" | "sdxl-refiner") defaults to what the pipeline's text encoders are."""
    family = family or _family(pipe)
    unet, vae = pipe.unet.state_dict(), pipe.vae.state_dict()
    text = pipe.text_encoder.state_dict() if pipe.text_encoder is not None else {}
    sd = to_ldm(unet, unet_layout(unet)) | to_ldm(vae, vae_layout(vae))
    if family == "sdxl-refiner":  # OpenCLIP-G alone, as the first embedder
        text_2 = pipe.text_encoder_2.state_dict()
        sd |= to_ldm(text_2, open_clip_layout(text_2, SDXL_REFINER_CLIP_PREFIX))
        scale = torch.tensor(OPEN_CLIP_LOGIT_SCALE, dtype=pipe.text_encoder_2.dtype)
        sd[f"{SDXL_REFINER_CLIP_PREFIX}logit_scale"] = scale
    elif family == "sd1":
        sd |= to_ldm(text, clip_layout(text, SD1_CLIP_PREFIX))
        sd |= _position_ids(pipe.text_encoder, SD1_CLIP_PREFIX)
    elif family == "sd2":
        sd |= to_ldm(text, open_clip_layout(text, SD2_CLIP_PREFIX))
        sd |= _sd2_unused_tail(pipe.text_encoder, pipe.text_encoder.dtype)
    elif family == "sdxl":
        text_2 = pipe.text_encoder_2.state_dict()
        sd |= to_ldm(text, clip_layout(text, SDXL_CLIP_L_PREFIX))
        sd |= _position_ids(pipe.text_encoder, SDXL_CLIP_L_PREFIX)
        sd |= to_ldm(text_2, open_clip_layout(text_2, SDXL_CLIP_G_PREFIX))
        scale = torch.tensor(OPEN_CLIP_LOGIT_SCALE, dtype=pipe.text_encoder_2.dtype)
        sd[f"{SDXL_CLIP_G_PREFIX}logit_scale"] = scale
    else:
        raise ValueError(f"unknown family {family!r}")
    return sd


def save_ldm_checkpoint(
    pipe: Any, path: str | Path, metadata: dict[str, str] | None = None, family: str | None = None
) -> Path:
    """Write the pipeline as one .safetensors file in the original SD layout (as A1111 and civitai use)."""
    path = Path(path)
    tensors = {k: v.cpu() for k, v in pipeline_to_ldm_state_dict(pipe, family).items()}
    save_file(tensors, str(path), metadata={"format": "pt", **(metadata or {})})
    return path
