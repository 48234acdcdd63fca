"""Session fixtures: tiny SD1, SD2 (epsilon and v) and SDXL checkpoints written as real single files,
and the SD1 / SDXL inpainting architectures.

Each `tiny_*` fixture is a TinyCheckpoint (`.path`: the .safetensors file, `.pipe`: the diffusers
pipeline it was written from, for comparisons). Treat the pipes as read-only: they are shared.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.tiny_models import TinyCheckpoint, build_tiny_checkpoint


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
