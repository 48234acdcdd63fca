"""Seamless textures (A1111's "Tiling"): circular padding in every convolution of the UNet and the VAE while
a job runs, so the image's left edge continues its right edge and its top its bottom.

The padding mode is put back afterwards, also when the job fails, so the next job (and the loaded
checkpoint in the cache) sees the model exactly as it was.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from torch import nn

CIRCULAR = "circular"


def convolutions(pipe: Any) -> list[nn.Conv2d]:
    """The 2-D convolutions of the pipeline's UNet and VAE (LoRA-wrapped ones included: their base layer)."""
    found: list[nn.Conv2d] = []
    for name in ("unet", "vae"):
        model = getattr(pipe, name, None)
        if isinstance(model, nn.Module):
            found += [module for module in model.modules() if isinstance(module, nn.Conv2d)]
    return found


@contextmanager
def circular_padding(pipe: Any, enabled: bool) -> Iterator[None]:
    """Within the block, the UNet's and VAE's convolutions pad circularly when `enabled` (else nothing)."""
    if not enabled:
        yield
        return
    layers = convolutions(pipe)
    before = [layer.padding_mode for layer in layers]
    try:
        for layer in layers:
            # Conv2d reads padding_mode on each forward: anything but "zeros" pads with F.pad first
            layer.padding_mode = CIRCULAR
        yield
    finally:
        for layer, mode in zip(layers, before):
            layer.padding_mode = mode
