"""Session fixtures: tiny SD1, SD2 (epsilon and v) and SDXL checkpoints written as real single files,
and the SD1 / SDXL inpainting architectures.

Each `tiny_*` fixture is a TinyCheckpoint (`.path`: the .safetensors file, `.pipe`: the diffusers
pipeline it was written from, for comparisons). Treat the pipes as read-only: they are shared.

`make_manager` is the one way the engine tests build a ModelManager over such files.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from tools.tiny_models import TinyCheckpoint, build_tiny_checkpoint
from webui.core.hashing import HashCache
from webui.engine.checkpoints.manager import ModelManager
from webui.engine.checkpoints.registry import CheckpointRegistry
from webui.engine.devices import DeviceChoice

CPU = DeviceChoice(torch.device("cpu"), torch.float32)


def _manager(
    folder: Path, *checkpoints: TinyCheckpoint, hashes: HashCache | None = None, **options: Any
) -> ModelManager:
    models = folder / "models"
    models.mkdir(parents=True, exist_ok=True)
    for checkpoint in checkpoints:
        shutil.copy(checkpoint.path, models / checkpoint.path.name)
    registry = CheckpointRegistry(models, hashes or HashCache(folder / "cache.json"))
    return ModelManager(registry, options.pop("device", CPU), **options)


@pytest.fixture(scope="session")
def make_manager() -> Callable[..., ModelManager]:
    """`make_manager(folder, *checkpoints, hashes=None, **options)`: a ModelManager over folder/models
    holding copies of the checkpoints, on the CPU in float32 unless `device` says otherwise. Its hash
    cache is `hashes` (pass the one a VAE or embedding library shares) or folder/cache.json; the other
    options go to ModelManager (vaes, embeddings, loras, controlnets, memory, device_slots, …)."""
    return _manager


@pytest.fixture(scope="module")
def manager(
    tmp_path_factory: pytest.TempPathFactory,
    tiny_sd1: TinyCheckpoint,
    make_manager: Callable[..., ModelManager],
) -> ModelManager:
    """A ModelManager with the tiny SD1 checkpoint loaded, one per test module (modules that need another
    model define their own `manager`)."""
    manager = make_manager(tmp_path_factory.mktemp("models"), tiny_sd1)
    manager.get()
    return manager


@pytest.fixture(scope="session")
def tiny_checkpoint_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tiny-checkpoints")


@pytest.fixture(scope="session")
def tiny_sd1(tiny_checkpoint_dir: Path) -> TinyCheckpoint:
    return build_tiny_checkpoint(tiny_checkpoint_dir / "tiny-sd1.safetensors", "sd1")


@pytest.fixture(scope="session")
def tiny_sd1_checkpoint(tiny_sd1: TinyCheckpoint) -> Path:
    return tiny_sd1.path


@pytest.fixture(scope="session")
def tiny_sd2(tiny_checkpoint_dir: Path) -> TinyCheckpoint:
    return build_tiny_checkpoint(tiny_checkpoint_dir / "tiny-sd2.safetensors", "sd2")


@pytest.fixture(scope="session")
def tiny_sd2_v(tiny_checkpoint_dir: Path) -> TinyCheckpoint:
    """No sidecar and no metadata: only the UNet's answer tells that it is a v-prediction model."""
    return build_tiny_checkpoint(tiny_checkpoint_dir / "tiny-sd2-v.safetensors", "sd2-v")


@pytest.fixture(scope="session")
def tiny_sdxl(tiny_checkpoint_dir: Path) -> TinyCheckpoint:
    return build_tiny_checkpoint(tiny_checkpoint_dir / "tiny-sdxl.safetensors", "sdxl")


@pytest.fixture(scope="session")
def tiny_sd1_fast(tiny_checkpoint_dir: Path) -> TinyCheckpoint:
    """SD1 with attention at the lower UNet level only: ~3x faster at 64x64 where only identity matters."""
    path = tiny_checkpoint_dir / "tiny-sd1-fast.safetensors"
    return build_tiny_checkpoint(path, "sd1", full_resolution_attention=False)


@pytest.fixture(scope="session")
def tiny_sd1_inpaint(tiny_checkpoint_dir: Path) -> TinyCheckpoint:
    """The SD1 inpainting architecture: a 9-channel UNet (latents, mask, masked-image latents); attention
    at the lower level only, as tiny_sd1_fast."""
    path = tiny_checkpoint_dir / "tiny-sd1-inpaint.safetensors"
    return build_tiny_checkpoint(path, "sd1-inpaint", full_resolution_attention=False)


@pytest.fixture(scope="session")
def tiny_sdxl_inpaint(tiny_checkpoint_dir: Path) -> TinyCheckpoint:
    return build_tiny_checkpoint(tiny_checkpoint_dir / "tiny-sdxl-inpaint.safetensors", "sdxl-inpaint")


@pytest.fixture(scope="session")
def tiny_checkpoints(
    tiny_sd1: TinyCheckpoint, tiny_sd2: TinyCheckpoint, tiny_sd2_v: TinyCheckpoint, tiny_sdxl: TinyCheckpoint
) -> dict[str, TinyCheckpoint]:
    """All tiny checkpoints by variant name: "sd1", "sd2", "sd2-v", "sdxl"."""
    return {"sd1": tiny_sd1, "sd2": tiny_sd2, "sd2-v": tiny_sd2_v, "sdxl": tiny_sdxl}
