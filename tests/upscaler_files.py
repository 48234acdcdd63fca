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


def write_gfpgan(path: Path, seed: int = 3) -> Path:
    """GFPGANv1.4's layout (GFPGANv1Clean, 512² faces, the `params_ema` wrapper of the published .pth), with
    random weights stored in fp16 to halve the file (the loader reads them into fp32 as it does published
    fp32 files). The architecture's size is fixed: about 86 M parameters, a 173 MB file."""
    load_spandrel()
    from spandrel.architectures.GFPGAN import GFPGAN

    torch.manual_seed(seed)
    state = {key: value.half() for key, value in GFPGAN().state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"params_ema": state}, path)
    return path


def write_codeformer(path: Path, seed: int = 4) -> Path:
    """CodeFormer's layout (codeformer-v0.1.0.pth: `params_ema`), from the optional spandrel_extra_arches,
    with a narrower transformer (dim 128, one layer, 64 codes; spandrel reads these from the keys)."""
    from webui.engine.upscaling.spandrel_import import load_extra_arches

    if load_extra_arches() is None:
        raise RuntimeError("spandrel_extra_arches is not installed")
    from spandrel_extra_arches.architectures.CodeFormer import CodeFormer

    torch.manual_seed(seed)
    model = CodeFormer(dim_embd=128, n_head=8, n_layers=1, codebook_size=64, latent_size=256)
    state = {key: value.half() for key, value in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"params_ema": state}, path)
    return path
