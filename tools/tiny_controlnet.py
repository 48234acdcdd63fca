"""Tiny ControlNets for tests, saved as single files in the original (lllyasviel) or the diffusers layout.

Built from a (tiny) pipeline's UNet with ControlNetModel.from_unet. A fresh ControlNet adds nothing (its
output convolutions start at zero), so those are randomised: the control image then changes the result.

    from tools.tiny_controlnet import save_tiny_controlnet
    save_tiny_controlnet(models_dir / "ControlNet" / "tiny-canny.safetensors", pipe)
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import torch
from diffusers import ControlNetModel
from safetensors.torch import save_file

from webui.engine.controlnet.layout import to_original

HINT_CHANNELS = (16, 32, 96, 256)  # the original models' conditioning encoder widths


def tiny_controlnet(pipe: Any, seed: int = 0, strength: float = 0.5) -> ControlNetModel:
    """A ControlNet copied from `pipe`'s UNet with random output convolutions of scale `strength`; the same
    seed gives the same weights.

    The conditioning encoder downsamples as often as the pipeline's VAE, so control images are at the
    output size."""
    levels = int(math.log2(pipe.vae_scale_factor)) + 1
    with torch.random.fork_rng(devices=[]):  # the conditioning encoder's initial weights: seeded too
        torch.manual_seed(seed)
        controlnet = ControlNetModel.from_unet(
            pipe.unet, conditioning_embedding_out_channels=HINT_CHANNELS[:levels]
        )
    generator = torch.Generator().manual_seed(seed)
    zero_convs = [
        *controlnet.controlnet_down_blocks,
        controlnet.controlnet_mid_block,
        controlnet.controlnet_cond_embedding.conv_out,
    ]
    with torch.no_grad():
        for conv in zero_convs:
            conv.weight.copy_(
                torch.randn(conv.weight.shape, generator=generator)
                * strength
                / math.sqrt(conv.weight[0].numel())
            )
            conv.bias.copy_(torch.randn(conv.bias.shape, generator=generator) * strength * 0.1)
    return controlnet.eval().requires_grad_(False)


def save_tiny_controlnet(
    path: str | Path, pipe: Any, seed: int = 0, layout: Literal["original", "diffusers"] = "original"
) -> Path:
    """Build a tiny ControlNet for `pipe` and write it as one .safetensors file (creating the folder)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in tiny_controlnet(pipe, seed).state_dict().items()}
    tensors = to_original(state) if layout == "original" else state
    save_file(tensors, str(path), metadata={"format": "pt"})
    return path
