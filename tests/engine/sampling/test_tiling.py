"""Tiling (engine.sampling.tiling): a tiled image's opposite edges continue each other, and the model's
convolutions are back to zero padding after the job, also after a failed one."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from tools.tiny_models import TinyCheckpoint
from webui.core import infotext, samplers
from webui.core.params import Txt2Img
from webui.engine.checkpoints.manager import ModelManager
from webui.engine.sampling import generate, run_hooks
from webui.engine.sampling.schedulers import make_scheduler
from webui.engine.sampling.tiling import circular_padding, convolutions
from webui.services.job import Job

pytestmark = pytest.mark.usefixtures("one_torch_thread")

DEMO = Path(__file__).resolve().parents[3] / "models" / "Stable-diffusion" / "demo-shapes.safetensors"


class DemoCheckpoint:
    path = DEMO


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, make_manager: Callable[..., ModelManager]) -> ModelManager:
    return make_manager(tmp_path_factory.mktemp("tiling-demo"), DemoCheckpoint())


@pytest.fixture(scope="module")
def tiny(
    tmp_path_factory: pytest.TempPathFactory,
    tiny_sd1_fast: TinyCheckpoint,
    make_manager: Callable[..., ModelManager],
) -> ModelManager:
    return make_manager(tmp_path_factory.mktemp("tiling-tiny"), tiny_sd1_fast)


def _run(manager: ModelManager, params: Txt2Img) -> tuple[np.ndarray, str]:
    result = generate.run(params, manager, Job(params=None, kind="txt2img", clock=time.monotonic))
    return np.asarray(result.images[0], dtype=np.float32), result.infotexts[0]


def seam_ratio(pixels: np.ndarray, axis: int) -> float:
    """The jump across the image's wrap-around seam (last row/column to the first), moved to the middle
    by rolling half the size, against the mean jump between neighbouring rows/columns elsewhere."""
    size = pixels.shape[axis]
    rolled = np.roll(pixels, size // 2, axis=axis)
    steps = np.abs(np.diff(rolled, axis=axis)).mean(axis=tuple(a for a in range(3) if a != axis))
    seam = steps[size // 2 - 1]
    return float(seam / np.delete(steps, size // 2 - 1).mean())


def test_tiled_edges_continue_each_other(demo: ModelManager) -> None:
    base = Txt2Img(
        prompt="a red circle on a blue background", seed=11, width=64, height=64, steps=12, cfg_scale=7.0
    )
    plain, plain_text = _run(demo, base)
    tiled, tiled_text = _run(demo, base.replace(tiling=True))
    for axis in (0, 1):  # top/bottom, left/right
        assert seam_ratio(tiled, axis) < 1.5, axis  # like any other pair of neighbouring lines
        assert seam_ratio(plain, axis) > 2 * seam_ratio(tiled, axis), axis
    assert "Tiling: True" in tiled_text and "Tiling" not in plain_text
    assert infotext.to_params(infotext.parse(tiled_text)).tiling is True
    assert all(layer.padding_mode == "zeros" for layer in convolutions(demo.get(None).pipe))


def test_circular_model_is_shift_equivariant_on_the_torus(tiny: ModelManager) -> None:
    """With every UNet and VAE convolution circular, noise shifted by 4 latent pixels (a multiple of the
    UNet's downsampling) gives the image shifted by 8 pixels: nothing in the model sees an edge."""
    pipe = tiny.get(None).pipe
    pipe.scheduler = make_scheduler(samplers.resolve("Euler"), pipe.scheduler.config)  # no random noise
    assert pipe.vae_scale_factor == 2  # the tiny VAE: 64 px from 32 latent pixels
    noise = torch.randn(1, 4, 32, 32, generator=torch.Generator().manual_seed(0))

    def image(latents: torch.Tensor) -> np.ndarray:
        out = pipe(
            prompt="a red circle",
            num_inference_steps=2,
            latents=latents,
            height=64,
            width=64,
            output_type="np",
        )
        return out.images[0]

    with circular_padding(pipe, True):
        shifted = image(torch.roll(noise, shifts=4, dims=3))
        unshifted = image(noise)
    np.testing.assert_allclose(shifted, np.roll(unshifted, 8, axis=1), atol=2e-3)
    plain_shifted = image(torch.roll(noise, shifts=4, dims=3))
    assert np.abs(plain_shifted - np.roll(image(noise), 8, axis=1)).max() > 1e-2


def test_padding_is_put_back_after_an_error(tiny: ModelManager) -> None:
    pipe = tiny.get(None).pipe
    layers = convolutions(pipe)
    assert len(layers) > 20 and {layer.padding_mode for layer in layers} == {"zeros"}
    with pytest.raises(RuntimeError, match="boom"), circular_padding(pipe, True):
        assert {layer.padding_mode for layer in layers} == {"circular"}
        raise RuntimeError("boom")
    assert {layer.padding_mode for layer in layers} == {"zeros"}


def test_a_failing_tiled_job_leaves_the_model_as_it_was(tiny: ModelManager) -> None:
    params = Txt2Img(prompt="x", steps=1, width=64, height=64, tiling=True, seed=1)

    class Failing(run_hooks.NoHooks):
        def cfg_denoiser(self, pipe: object, params: object, count: int) -> None:
            assert {layer.padding_mode for layer in convolutions(pipe)} == {"circular"}
            raise RuntimeError("extension failed")

    with pytest.raises(RuntimeError, match="extension failed"):
        generate.run(params, tiny, Job(params=None, kind="txt2img", clock=time.monotonic), Failing())
    assert {layer.padding_mode for layer in convolutions(tiny.get(None).pipe)} == {"zeros"}
