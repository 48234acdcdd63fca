"""Random-weight model upscaler files in the key layouts published models use, for tests that need a real
model upscaler in a data folder (no download)."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file

from webui.engine.upscaling.spandrel_import import load_spandrel


def random_weights(module: torch.nn.Module, seed: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.normal_(0, 0.1)
    return {key: value.detach().clone().contiguous() for key, value in module.state_dict().items()}


def write_compact(path: Path, scale: int = 2, seed: int = 2) -> Path:
    """Real-ESRGAN's compact SRVGGNet layout (`body.0.weight` … as realesr-general-x4v3), tiny and fast."""
    load_spandrel()
    from spandrel.architectures.Compact import Compact

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(random_weights(Compact(num_feat=8, num_conv=1, upscale=scale), seed), path)
    return path
