"""The server log stays clean: no diffusers FutureWarning when an img2img pipeline is built after a run.

diffusers' img2img/inpaint pipelines warn ("The configuration file of this scheduler … steps_offset should
be set to 1") when built over a scheduler whose steps_offset is not 1: the scheduler an earlier run left
on the checkpoint's pipeline, whose schedule type leaves steps_offset to diffusers' default (0)."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable

import pytest
from PIL import Image

from tools.tiny_models import TinyCheckpoint
from webui.core.params import Img2Img, Txt2Img
from webui.engine.checkpoints.manager import ModelManager
from webui.engine.sampling import generate
from webui.services.job import Job

pytestmark = pytest.mark.usefixtures("one_torch_thread")

COMMON = dict(
    prompt="a red cube", steps=2, cfg_scale=1.0, sampler_name="Euler a", seed=1, width=64, height=64
)


def test_img2img_after_txt2img_warns_nothing(
    tmp_path_factory: pytest.TempPathFactory,
    tiny_sd1_fast: TinyCheckpoint,
    make_manager: Callable[..., ModelManager],
) -> None:
    manager = make_manager(tmp_path_factory.mktemp("warnings"), tiny_sd1_fast)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        generate.run(Txt2Img(**COMMON), manager, Job(None, "txt2img", time.monotonic))
        assert manager.get().pipe.scheduler.config.steps_offset == 0  # what made diffusers warn
        image = Image.new("RGB", (64, 64), "red")
        for mask in (None, Image.new("L", (64, 64), 255)):  # the img2img and the inpaint pipeline
            params = Img2Img(**COMMON, init_images=(image,), mask=mask, denoising_strength=0.5)
            result = generate.run(params, manager, Job(None, "img2img", time.monotonic))
            assert len(result.images) == 1
