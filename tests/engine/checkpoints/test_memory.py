"""Memory modes and our VAE decode (engine.memory), on the CPU with tiny checkpoints.

Offload itself needs a GPU (diffusers refuses it without one): what is checked here is which pipes the
manager offloads and that it never moves an offloaded pipe, with stand-in pipes on a named "cuda" device.
"""

from __future__ import annotations

import gc
import logging
import shutil
import time
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pytest
import torch
from diffusers.models.attention_processor import AttnProcessor2_0

from tools.tiny_models import TinyCheckpoint
from webui.app import App
from webui.core.cmd_args import parse_args
from webui.core.errors import InvalidParameter
from webui.core.hashing import HashCache
from webui.core.params import Txt2Img
from webui.engine.checkpoints import loader, memory
from webui.engine.checkpoints import manager as manager_module
from webui.engine.checkpoints.architecture import Architecture
from webui.engine.checkpoints.loader import LoadedCheckpoint
from webui.engine.checkpoints.manager import ModelManager
from webui.engine.checkpoints.memory import MemoryFlags
from webui.engine.checkpoints.registry import CheckpointRegistry
from webui.engine.devices import DeviceChoice
from webui.engine.sampling import generate
from webui.services.job import Job

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CPU = DeviceChoice(torch.device("cpu"), torch.float32)
CUDA = DeviceChoice(torch.device("cuda"), torch.float16)  # only named: stand-in pipes never touch it
ALL_FLAGS = ["--medvram", "--lowvram", "--medvram-sdxl", "--no-half-vae", "--upcast-sampling"]
PARAMS = Txt2Img(
    prompt="a red cube", negative_prompt="blurry", steps=2, cfg_scale=5.0, seed=5, width=64, height=64
)


def fresh_pipe(checkpoint: TinyCheckpoint) -> Any:
    """A pipe of our own (the fixtures' pipes are shared and must stay untouched)."""
    pipe = loader.load_checkpoint(checkpoint.path, CPU.device, CPU.dtype).pipe
    pipe.set_progress_bar_config(disable=True)
    return pipe


def pipe_output(pipe: Any, output_type: str) -> Any:
    generator = torch.Generator().manual_seed(3)
    with torch.inference_mode():
        return pipe(
            prompt="a red cube",
            num_inference_steps=2,
            width=64,
            height=64,
            generator=generator,
            output_type=output_type,
        ).images


def random_latents(seed: int = 0, side: int = 32) -> torch.Tensor:
    return torch.randn(1, 4, side, side, generator=torch.Generator().manual_seed(seed))


# --- flags ----------------------------------------------------------------------------------------


def test_flags_are_accepted_on_cpu_and_logged_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="webui.engine.checkpoints.memory")
    app = App(parse_args([*ALL_FLAGS, "--data-dir", str(tmp_path)]))
    try:
        assert app.manager.memory == MemoryFlags(True, True, True, True, True)
        said = [r.getMessage() for r in caplog.records if r.name == "webui.engine.checkpoints.memory"]
        assert len(said) == 1 and "no effect on cpu" in said[0]
        assert all(flag in said[0] for flag in ALL_FLAGS)
        # the tiling threshold option reaches the manager, and a bad value is refused
        assert app.manager.vae_tiling_threshold == 1536
        app.update_options({"vae_tiling_threshold": 0})
        assert app.manager.vae_tiling_threshold == 0
        with pytest.raises(InvalidParameter, match="vae_tiling_threshold"):
            app.update_options({"vae_tiling_threshold": -1})
    finally:
        app.jobs.stop()


def test_no_flags_log_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="webui.engine.checkpoints.memory")
    memory.log_startup(MemoryFlags.from_args(parse_args([])), CPU)
    assert not [r for r in caplog.records if r.name == "webui.engine.checkpoints.memory"]


@pytest.mark.parametrize(
    ("flags", "sd1", "sdxl"),
    [
        (MemoryFlags(), "none", "none"),
        (MemoryFlags(medvram=True), "model", "model"),
        (MemoryFlags(medvram_sdxl=True), "none", "model"),
        (MemoryFlags(lowvram=True, medvram=True), "sequential", "sequential"),
    ],
)
def test_offload_choice_per_family(flags: MemoryFlags, sd1: str, sdxl: str) -> None:
    assert (flags.offload_for("sd1"), flags.offload_for("sdxl")) == (sd1, sdxl)


@pytest.mark.filterwarnings("ignore:CUDA is not available")  # the autocast object is only inspected here
def test_upcast_sampling_keeps_latents_float32_only_on_a_half_gpu() -> None:
    on = MemoryFlags(upcast_sampling=True)
    assert memory.sampling_dtype(on, CUDA, torch.float16) == torch.float32
    assert memory.sampling_autocast(on, CUDA, torch.float16).fast_dtype == torch.float16
    assert memory.sampling_dtype(on, CPU, torch.float32) == torch.float32
    assert memory.sampling_dtype(MemoryFlags(), CUDA, torch.float16) == torch.float16
    assert not memory.sampling_autocast(MemoryFlags(), CUDA, torch.float16)._enabled


class StandInVae:
    def __init__(self) -> None:
        self.dtype = torch.float16

    def to(self, dtype: torch.dtype) -> StandInVae:
        self.dtype = dtype
        return self


class StandInPipe:
    """Records moves and offload calls, like a diffusers pipeline would undergo them."""

    def __init__(self) -> None:
        self.moves: list[str] = []
        self.offloads: list[tuple[str, torch.device]] = []
        self.vae = StandInVae()

    def to(self, device: torch.device | str) -> StandInPipe:
        self.moves.append(torch.device(device).type)
        return self

    def enable_model_cpu_offload(self, device: torch.device) -> None:
        self.offloads.append(("model", device))

    def enable_sequential_cpu_offload(self, device: torch.device) -> None:
        self.offloads.append(("sequential", device))

    def set_progress_bar_config(self, **options: object) -> None:
        pass


def stand_in_manager(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flags: MemoryFlags
) -> tuple[ModelManager, dict[str, StandInPipe], list[str]]:
    """A manager on a named "cuda" device whose loads hand out stand-in pipes: "xl" is SDXL, "one" SD1."""
    folder = tmp_path / "models"
    folder.mkdir()
    for name in ("one.safetensors", "xl.safetensors"):
        (folder / name).write_bytes(name.encode())
    pipes: dict[str, StandInPipe] = {}
    load_devices: list[str] = []

    def load(path: Path, device: torch.device, dtype: torch.dtype) -> LoadedCheckpoint:
        load_devices.append(device.type)
        family = "sdxl" if path.stem == "xl" else "sd1"
        pipe = pipes[path.stem] = StandInPipe()
        architecture = Architecture(family, "epsilon", False, 512)
        return LoadedCheckpoint(path, architecture, pipe)  # type: ignore[arg-type]

    monkeypatch.setattr(manager_module, "load_checkpoint", load)
    registry = CheckpointRegistry(folder, HashCache(tmp_path / "cache.json"))
    return ModelManager(registry, CUDA, device_slots=1, keep_in_cpu=True, memory=flags), pipes, load_devices


def test_medvram_sdxl_offloads_only_sdxl_and_the_cache_never_moves_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flags = MemoryFlags(medvram_sdxl=True, no_half_vae=True)
    manager, pipes, load_devices = stand_in_manager(tmp_path, monkeypatch, flags)
    for name in ("xl", "one", "xl", "one"):
        manager.get(name)
    assert pipes["xl"].offloads == [("model", CUDA.device)] and pipes["xl"].moves == []
    assert pipes["one"].offloads == [] and pipes["one"].moves[-1] == "cuda" and "cpu" in pipes["one"].moves
    assert pipes["xl"].vae.dtype == pipes["one"].vae.dtype == torch.float32  # --no-half-vae
    assert load_devices == ["cuda", "cuda"]  # whether a checkpoint is SDXL is known only once loaded


def test_lowvram_loads_into_ram_and_offloads_every_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manager, pipes, load_devices = stand_in_manager(tmp_path, monkeypatch, MemoryFlags(lowvram=True))
    manager.get("one")
    manager.get("xl")
    assert load_devices == ["cpu", "cpu"]  # no VRAM peak while loading
    assert all(p.offloads == [("sequential", CUDA.device)] and p.moves == [] for p in pipes.values())
    assert pipes["one"].vae.dtype == torch.float16  # VAE stays half without --no-half-vae


def test_cpu_ignores_every_flag(tmp_path: Path, tiny_sd1: TinyCheckpoint) -> None:
    shutil.copy(tiny_sd1.path, tmp_path / "tiny.safetensors")
    registry = CheckpointRegistry(tmp_path, HashCache(tmp_path / "cache.json"))
    plain = ModelManager(registry, CPU)
    flagged = ModelManager(registry, CPU, memory=MemoryFlags(True, True, True, True, True))
    jobs = [Job(params=None, kind="txt2img", clock=time.monotonic) for _ in range(2)]
    images = [generate.run(PARAMS, m, job).images[0] for m, job in zip((plain, flagged), jobs)]
    assert np.array_equal(np.asarray(images[0]), np.asarray(images[1]))
    assert not hasattr(flagged.current.pipe, "_all_hooks") or not flagged.current.pipe._all_hooks


def test_attention_is_pytorch_sdpa_by_default(tiny_sd1: TinyCheckpoint) -> None:
    """diffusers' default processor is AttnProcessor2_0 (F.scaled_dot_product_attention): nothing to set."""
    pipe = fresh_pipe(tiny_sd1)
    processors = [*pipe.unet.attn_processors.values(), *pipe.vae.attn_processors.values()]
    assert processors and all(isinstance(p, AttnProcessor2_0) for p in processors)


# --- decoding -------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["sd1", "sdxl"])
def test_our_decode_gives_the_pipelines_own_pixels(variant: str, request: pytest.FixtureRequest) -> None:
    pipe = fresh_pipe(request.getfixturevalue(f"tiny_{variant}"))
    theirs = pipe_output(pipe, "pil")
    with torch.inference_mode():
        ours = memory.decode_latents(pipe, pipe_output(pipe, "latent"))
    assert len(ours) == len(theirs) == 1
    assert np.array_equal(np.asarray(ours[0]), np.asarray(theirs[0]))
    assert np.asarray(ours[0]).std() > 1  # an image, not a flat field


def test_tiling_switches_on_above_the_threshold(
    tiny_sd1: TinyCheckpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipe = fresh_pipe(tiny_sd1)
    vae = pipe.vae
    vae.tile_sample_min_size, vae.tile_latent_min_size = 32, 16  # tiles small enough for a 64x64 image
    tiled: list[tuple[int, ...]] = []
    original = vae.tiled_decode

    def spy(z: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        tiled.append(tuple(z.shape))
        return original(z, *args, **kwargs)

    monkeypatch.setattr(vae, "tiled_decode", spy)
    latents = random_latents(side=32)  # 64x64 pixels (the tiny VAE scales by 2)
    with torch.inference_mode():
        untouched = memory.decode_latents(pipe, latents, tiling_threshold=0)
        at_threshold = memory.decode_latents(pipe, latents, tiling_threshold=64)
        assert tiled == []
        images = memory.decode_latents(pipe, latents, tiling_threshold=48)
    assert tiled == [(1, 4, 32, 32)]
    assert images[0].size == (64, 64) and not vae.use_tiling  # switched off again afterwards
    assert np.array_equal(np.asarray(untouched[0]), np.asarray(at_threshold[0]))
    assert not np.array_equal(np.asarray(images[0]), np.asarray(untouched[0]))  # tiles blend their seams


def test_nan_from_a_half_vae_is_decoded_again_in_float32(
    tiny_sd1: TinyCheckpoint, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    pipe = fresh_pipe(tiny_sd1)
    vae = pipe.vae.to(torch.float16)
    real_decode = type(vae).decode
    dtypes: list[torch.dtype] = []

    def overflowing(self: Any, z: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        dtypes.append(z.dtype)
        if self.dtype == torch.float16:  # what an SD VAE does in fp16 on some images
            return (torch.full((z.shape[0], 3, z.shape[2] * 2, z.shape[3] * 2), float("nan"), dtype=z.dtype),)
        return real_decode(self, z, *args, **kwargs)

    monkeypatch.setattr(type(vae), "decode", overflowing)
    with torch.inference_mode():
        image = np.asarray(memory.decode_latents(pipe, random_latents()))[0]
    assert dtypes == [torch.float16, torch.float32]
    assert image.shape == (64, 64, 3) and image.max() > 0 and image.std() > 1  # not a black square
    assert vae.dtype == torch.float16  # upcast only for the retry
    assert any("NaN" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)


# --- cache memory ---------------------------------------------------------------------------------


def rss() -> int:
    gc.collect()
    return psutil.Process().memory_info().rss


def test_checkpoint_swaps_free_their_weights(tmp_path: Path, tiny_sd1: TinyCheckpoint) -> None:
    names = ("a", "b", "c")
    for name in names:
        shutil.copy(tiny_sd1.path, tmp_path / f"{name}.safetensors")
    registry = CheckpointRegistry(tmp_path, HashCache(tmp_path / "cache.json"))
    manager = ModelManager(registry, CPU, device_slots=1, keep_in_cpu=True)
    pipes: list[weakref.ref] = []

    def swap(count: int) -> None:
        for _ in range(count):
            loaded = manager.get(names[len(pipes) % 3])  # a, b, c, a, …: with 2 kept, every swap loads
            pipes.append(weakref.ref(loaded.pipe))

    swap(2)
    after_two = rss()
    swap(18)
    after_twenty = rss()
    alive = [ref for ref in pipes if ref() is not None]
    assert len(alive) == 2  # only the two the cache keeps: every evicted pipe was really freed
    assert after_twenty <= after_two * 1.10, (after_two, after_twenty)
