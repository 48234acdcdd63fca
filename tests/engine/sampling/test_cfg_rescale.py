"""CFG Rescale (engine.sampling.cfg_rescale): the same result as diffusers' own `guidance_rescale` where a
pipeline has one, and applied on every generation path (img2img and inpaint pipelines have none)."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pytest
import torch
from PIL import Image

from tools.tiny_models import TinyCheckpoint
from webui.core.params import GenerationParams, Img2Img, Txt2Img
from webui.engine.checkpoints.loader import load_checkpoint
from webui.engine.checkpoints.manager import ModelManager
from webui.engine.sampling import cfg_rescale, generate
from webui.engine.sampling.hooks import ModelHooks
from webui.services.job import Job

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# a high CFG scale: the tiny random model's cond and uncond differ little, guidance must stretch them
BASE = Txt2Img(
    prompt="a red circle", negative_prompt="blurry", steps=3, cfg_scale=30.0, seed=5, width=64, height=64
)


def test_rescaled_cond_turns_diffusers_cfg_into_the_papers_formula() -> None:
    uncond, cond = torch.randn(2, 3, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    scale, phi = 7.0, 0.7
    guided = uncond + scale * (cond - uncond)
    dims = (1, 2, 3)  # per image, as in the paper
    expected = phi * guided * cond.std(dim=dims, keepdim=True) / guided.std(dim=dims, keepdim=True)
    expected = expected + (1 - phi) * guided
    got = uncond + scale * (cfg_rescale.rescaled_cond(uncond, cond, scale, phi) - uncond)
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(cfg_rescale.rescaled_cond(uncond, cond, scale, 0.0), cond)


@pytest.mark.parametrize("variant", ["tiny_sd1", "tiny_sd2_v"])
def test_the_hook_gives_diffusers_own_guidance_rescale(request: pytest.FixtureRequest, variant: str) -> None:
    """Two prompts in one batch: the rescale is per image. v-prediction included (the paper's case)."""
    checkpoint: TinyCheckpoint = request.getfixturevalue(variant)
    pipe = load_checkpoint(checkpoint.path, torch.device("cpu"), torch.float32).pipe
    pipe.set_progress_bar_config(disable=True)

    def latents(**extra: object) -> torch.Tensor:
        return pipe(
            prompt=["a red circle", "a blue square"],
            negative_prompt=["blurry", "dark"],
            num_inference_steps=3,
            guidance_scale=30.0,
            height=64,
            width=64,
            generator=torch.Generator().manual_seed(1),
            output_type="latent",
            **extra,
        ).images

    diffusers_own = latents(guidance_rescale=0.7)
    with ModelHooks([cfg_rescale.hook(30.0, 0.7, count=2)]).installed(pipe.unet):
        hooked = latents()
    assert not pipe.unet._forward_hooks  # removed again
    torch.testing.assert_close(hooked, diffusers_own, atol=1e-4, rtol=1e-3)  # float rounding
    assert (latents() - diffusers_own).abs().max() > 0.01  # the rescale did something


@pytest.fixture(scope="module")
def manager(
    tmp_path_factory: pytest.TempPathFactory,
    tiny_sd1_fast: TinyCheckpoint,
    make_manager: Callable[..., ModelManager],
) -> ModelManager:
    return make_manager(tmp_path_factory.mktemp("cfg-rescale"), tiny_sd1_fast)


def run(manager: ModelManager, params: GenerationParams) -> np.ndarray:
    result = generate.run(params, manager, Job(params=None, kind="txt2img", clock=time.monotonic))
    return np.asarray(result.images[0], dtype=np.int16)


INPUT = Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
MASK = Image.new("L", (64, 64))
MASK.paste(255, (16, 16, 48, 48))


@pytest.mark.parametrize(
    "params",
    [
        BASE,
        Img2Img.from_txt2img(BASE, init_images=(INPUT,), denoising_strength=1.0),
        Img2Img.from_txt2img(BASE, init_images=(INPUT,), mask=MASK, denoising_strength=1.0),
    ],
    ids=["txt2img", "img2img", "inpaint"],
)
def test_every_path_rescales_and_without_cfg_nothing_changes(
    manager: ModelManager, params: GenerationParams
) -> None:
    plain = run(manager, params)
    assert np.abs(run(manager, params.replace(cfg_rescale=0.7)) - plain).mean() > 0.5
    no_cfg = params.replace(cfg_scale=1.0)
    assert np.array_equal(run(manager, no_cfg.replace(cfg_rescale=0.7)), run(manager, no_cfg))
    assert not manager.get().pipe.unet._forward_hooks
