"""img2img through engine.generate.run on tiny single-file checkpoints, and through the App to a saved PNG.

Tiny random models: pixels carry no meaning, only identity (equal means byte-equal).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from diffusers import StableDiffusionImg2ImgPipeline, StableDiffusionInpaintPipeline, StableDiffusionPipeline
from PIL import Image
from safetensors.torch import save_file

from tests.conftest import make_app, make_data_dir
from tools.tiny_models import TinyCheckpoint, kohya_lora
from webui.core import infotext
from webui.core.errors import InvalidParameter
from webui.core.hashing import HashCache
from webui.core.params import Img2Img
from webui.core.requests import Result
from webui.engine.checkpoints.loader import load_checkpoint
from webui.engine.checkpoints.manager import ModelManager
from webui.engine.networks.lora import LoraLibrary
from webui.engine.sampling import generate, img2img
from webui.services.job import Job
from webui.services.outputs import read_infotext

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def blocks(width: int, height: int, seed: int = 0) -> Image.Image:
    """4x3 blocks of random colours: content a tiny VAE keeps (it blurs fine noise away)."""
    colours = np.random.default_rng(seed).integers(0, 256, (3, 4, 3), dtype=np.uint8)
    return Image.fromarray(colours).resize((width, height), Image.Resampling.NEAREST)


INPUT = blocks(96, 72)
BASE = Img2Img(
    prompt="a red cube",
    negative_prompt="blurry",
    steps=4,
    cfg_scale=1.0,  # no CFG: half the UNet work; what is tested here does not need guidance
    sampler_name="Euler a",
    seed=1234,
    width=64,
    height=64,
    init_images=(INPUT,),
    denoising_strength=0.5,
)


class RecordingJob(Job):
    def __init__(self) -> None:
        super().__init__(params=None, kind="img2img", clock=time.monotonic)
        self.reports: list[tuple[int, int]] = []

    def report(self, step: int, total: int, preview: object | None = None) -> None:
        super().report(step, total, preview)
        self.reports.append((step, total))


@pytest.fixture(scope="module")
def manager(
    tmp_path_factory: pytest.TempPathFactory,
    tiny_sd1_fast: TinyCheckpoint,
    make_manager: Callable[..., ModelManager],
) -> ModelManager:
    return make_manager(tmp_path_factory.mktemp("img2img"), tiny_sd1_fast)


def run(manager: ModelManager, params: Img2Img) -> tuple[Result, RecordingJob]:
    job = RecordingJob()
    return generate.run(params, manager, job), job


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def test_img2img_runs_the_strengths_share_of_the_steps_and_says_so(manager: ModelManager) -> None:
    half, job = run(manager, BASE)
    assert job.reports == [(1, 2), (2, 2)]  # int(4 × 0.5) steps run, reported against what runs
    assert infotext.parse(half.infotexts[0])["Denoising strength"] == "0.5"
    _, full = run(manager, BASE.replace(denoising_strength=1.0))
    assert full.reports[-1] == (4, 4)
    _, none = run(manager, BASE.replace(denoising_strength=0.0))
    assert none.reports == [(1, 1)]  # too weak for a step: one at the lowest noise, as A1111


def test_img2img_is_reproducible_and_follows_its_input(manager: ModelManager) -> None:
    low = BASE.replace(denoising_strength=0.25)  # one step at the lowest noise: the input shows through
    first, _ = run(manager, low)
    again, _ = run(manager, low)
    other_input, _ = run(manager, low.replace(init_images=(blocks(96, 72, seed=9),)))
    other_seed, _ = run(manager, low.replace(seed=99))
    assert first.images[0].size == (64, 64)
    assert first.images[0].tobytes() == again.images[0].tobytes()
    assert np.abs(pixels(first.images[0]) - pixels(other_input.images[0])).mean() > 5
    assert np.abs(pixels(first.images[0]) - pixels(other_seed.images[0])).mean() > 5


@pytest.mark.parametrize("mode", range(4))
def test_every_resize_mode_gives_the_output_size(manager: ModelManager, mode: int) -> None:
    result, _ = run(manager, BASE.replace(resize_mode=mode, steps=2, cfg_scale=1.0, width=64, height=80))
    assert result.images[0].size == (64, 80)


def test_resize_modes_start_from_different_crops(manager: ModelManager) -> None:
    stretched, _ = run(manager, BASE.replace(resize_mode=0, denoising_strength=0.25))
    cropped, _ = run(manager, BASE.replace(resize_mode=1, denoising_strength=0.25))
    assert np.abs(pixels(stretched.images[0]) - pixels(cropped.images[0])).mean() > 5


def test_one_input_serves_the_batch_several_make_it(manager: ModelManager) -> None:
    shared, _ = run(manager, BASE.replace(batch_size=2, n_iter=2, seed=10))
    assert shared.seeds == (10, 11, 12, 13) and len(shared.images) == 4
    assert np.abs(pixels(shared.images[0]) - pixels(shared.images[1])).mean() > 1  # its own seed each
    second = blocks(96, 72, seed=5)
    both, _ = run(manager, BASE.replace(init_images=(INPUT, second), batch_size=4, seed=10))
    alone, _ = run(manager, BASE.replace(init_images=(second,), seed=11))
    assert both.params.batch_size == 2 and both.seeds == (10, 11)
    # image 2 of the batch is the second input with seed 11 (equal up to batch-size float rounding)
    assert np.abs(pixels(both.images[1]) - pixels(alone.images[0])).max() <= 1
    with pytest.raises(InvalidParameter, match="2 input images but a batch size of 1"):
        run(manager, BASE.replace(init_images=(INPUT, second)))


def test_odd_inputs_are_converted_or_refused_clearly(manager: ModelManager) -> None:
    transparent = INPUT.convert("RGBA")
    transparent.putalpha(0)  # all transparent: the input is white
    white, _ = run(manager, BASE.replace(init_images=(transparent,)))
    plain_white, _ = run(manager, BASE.replace(init_images=(Image.new("RGB", (96, 72), "white"),)))
    assert white.images[0].tobytes() == plain_white.images[0].tobytes()
    with pytest.raises(InvalidParameter, match="input image 1 is 6000x6000"):
        run(manager, BASE.replace(init_images=(Image.new("L", (6000, 6000)),)))


def test_prompt_editing_counts_the_steps_that_run(manager: ModelManager) -> None:
    def image(prompt: str) -> np.ndarray:
        params = BASE.replace(prompt=prompt, cfg_scale=7.0)  # 2 of 4 steps run
        return pixels(run(manager, params)[0].images[0])

    plain = image("red cube")
    assert np.abs(image("[red cube:blue ball:0]") - plain).mean() > 1  # the second step runs edited
    # As A1111, the steps that run count from 0 against the whole schedule: an edit after step 2 of 4
    # never comes (counting from the skipped steps, the last step would have run edited).
    assert np.array_equal(image("[red cube:blue ball:2]"), plain)


def test_loras_apply_to_img2img_and_come_off_again(
    manager: ModelManager, tiny_sd1_fast: TinyCheckpoint, tmp_path: Path
) -> None:
    save_file(kohya_lora(tiny_sd1_fast.pipe, 1), tmp_path / "style.safetensors")
    manager.loras = LoraLibrary(tmp_path, HashCache(tmp_path / "lora-cache.json"))
    try:
        before, _ = run(manager, BASE)
        styled, _ = run(manager, BASE.replace(prompt="a red cube <lora:style:1>"))
        after, _ = run(manager, BASE)
    finally:
        manager.loras = None
    assert np.abs(pixels(styled.images[0]) - pixels(before.images[0])).mean() > 1
    assert after.images[0].tobytes() == before.images[0].tobytes()
    assert "style: " in infotext.parse(styled.infotexts[0])["Lora hashes"]


def test_img2img_pipelines_share_the_checkpoints_modules(manager: ModelManager) -> None:
    loaded = manager.get()
    run(manager, BASE)
    derived = loaded.pipeline(StableDiffusionImg2ImgPipeline)
    assert isinstance(loaded.pipe, StableDiffusionPipeline)
    assert loaded.pipeline(StableDiffusionImg2ImgPipeline) is derived  # built once
    assert loaded.pipeline(StableDiffusionPipeline) is loaded.pipe
    for name in ("unet", "vae", "text_encoder", "tokenizer"):
        assert getattr(derived, name) is getattr(loaded.pipe, name), name
    assert loaded.pipeline(StableDiffusionInpaintPipeline).unet is loaded.pipe.unet


def test_derived_pipelines_leave_the_modules_dtypes_alone(tiny_sd1_fast: TinyCheckpoint) -> None:
    """diffusers' from_pipe would cast every shared module to float32 (or one given dtype)."""
    loaded = load_checkpoint(tiny_sd1_fast.path, torch.device("cpu"), torch.bfloat16)
    loaded.pipe.vae.to(torch.float32)  # as --no-half-vae
    derived = loaded.pipeline(StableDiffusionInpaintPipeline)
    assert derived.unet.dtype == torch.bfloat16 and derived.text_encoder.dtype == torch.bfloat16
    assert derived.vae.dtype == torch.float32


def test_strength_too_low_for_a_step_still_runs_one() -> None:
    assert img2img.steps_and_strength(20, 0.5) == (10, 0.5)
    assert img2img.steps_and_strength(20, 0.04) == (1, 0.075)
    for steps in range(1, 151):
        run_steps, strength = img2img.steps_and_strength(steps, 0.0)
        assert run_steps == 1 and min(int(steps * strength), steps) == 1


def test_the_app_saves_img2img_under_img2img_images(tmp_path: Path, tiny_sd1_file: Path) -> None:
    app = make_app(make_data_dir(tmp_path, tiny_sd1_file))
    try:
        result = app.generate(BASE.replace(steps=2, seed=7, width=64, height=80))
    finally:
        app.jobs.stop()
    (path,) = result.paths
    assert Path(path).parent.parent == tmp_path / "outputs" / "img2img-images"
    with Image.open(path) as saved:
        text: Any = read_infotext(saved)
        assert saved.size == (64, 80)
    fields = infotext.parse(text)
    assert fields["Denoising strength"] == "0.5" and fields["Seed"] == "7"
    assert "Mask blur" not in fields
