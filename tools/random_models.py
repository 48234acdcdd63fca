"""Random-weight single-file checkpoints of real (or scaled-down) SD shapes, fp16, in the layout users'
files have (engine.checkpoints.ldm_export): a load of these goes through exactly the code a real
checkpoint does; only the values are random.

`cached_full_size(family)`: the bundled configs' own shapes (SD 1.5: 1.07 G parameters, 2.13 GB; SDXL:
3.5 G parameters, ~7 GB), built once into a cache folder outside the repository (~/.cache/webui-bench, or
$WEBUI_BENCH_CACHE) for the load benches. `build_random_checkpoint` with `overrides`: smaller variants
for tests that need a model of some size.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from accelerate import init_empty_weights
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

from webui.engine.checkpoints.components import CONFIGS
from webui.engine.checkpoints.ldm_export import save_ldm_checkpoint


def cache_dir() -> Path:
    folder = Path(os.environ.get("WEBUI_BENCH_CACHE", Path.home() / ".cache" / "webui-bench"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _config(family: str, component: str) -> dict[str, Any]:
    return json.loads((CONFIGS / family / component / "config.json").read_text(encoding="utf-8"))


def _random(module: torch.nn.Module, generator: torch.Generator) -> torch.nn.Module:
    """`module` (built on the meta device) with fp16 random weights, allocated once in fp16."""
    tensors = {
        name: (torch.randn(t.shape, generator=generator) * 0.02).to(torch.float16)
        if t.is_floating_point()
        else torch.zeros(t.shape, dtype=t.dtype)
        for name, t in module.state_dict().items()
    }
    module.load_state_dict(tensors, assign=True, strict=True)
    return module


class _Pipe:
    """The attributes save_ldm_checkpoint reads from a pipeline."""

    def __init__(self, **components: torch.nn.Module) -> None:
        self.__dict__.update(components)


def build_random_checkpoint(
    path: Path, family: str, overrides: dict[str, dict[str, Any]] | None = None, seed: int = 0
) -> Path:
    """Write a random fp16 `family` ("sd1" or "sdxl") checkpoint; `overrides`: component -> config changes."""
    overrides = overrides or {}

    def config(component: str) -> dict[str, Any]:
        return _config(family, component) | overrides.get(component, {})

    generator = torch.Generator().manual_seed(seed)
    with init_empty_weights():
        parts: dict[str, torch.nn.Module] = {
            "unet": UNet2DConditionModel.from_config(config("unet")),
            "vae": AutoencoderKL.from_config(config("vae")),
            "text_encoder": CLIPTextModel(CLIPTextConfig.from_dict(config("text_encoder"))),
        }
        if family == "sdxl":
            parts["text_encoder_2"] = CLIPTextModelWithProjection(
                CLIPTextConfig.from_dict(config("text_encoder_2"))
            )
    parts = {name: _random(module, generator) for name, module in parts.items()}
    partial = path.with_suffix(".partial")
    save_ldm_checkpoint(_Pipe(**parts), partial, family=family)
    return partial.rename(path)


def cached_full_size(family: str) -> Path:
    """The cached full-size file of `family` ("sd1" or "sdxl"), built on first use (minutes)."""
    path = cache_dir() / f"random-{family}-fp16.safetensors"
    return path if path.is_file() else build_random_checkpoint(path, family)
