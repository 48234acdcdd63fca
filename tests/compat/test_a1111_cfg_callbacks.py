"""A1111's on_cfg_denoised and on_cfg_after_cfg (webui/compat/a1111/cfg_hooks.py) with the fixture
"CFG probe": they see each model pass's prediction and the guided result, and what they put back is what
the sampler uses."""

from __future__ import annotations

import sys
from contextlib import contextmanager

import numpy as np
import pytest
import torch

from webui.core.params import Txt2Img

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SMALL = Txt2Img(
    prompt="a red circle", steps=2, width=64, height=64, sampler_name="Euler", cfg_scale=5, seed=7
)


def probe_module(app):
    """The fixture's module as this App loaded it (each App imports extensions under names of its own)."""
    _, callback = app.plugins.compat.callbacks["cfg_denoised"][0]
    return sys.modules[callback.__module__]


@contextmanager
def probe_mode(app, mode):
    app.settings.update({"cfg_probe_mode": mode})
    try:
        yield
    finally:
        app.settings.update({"cfg_probe_mode": "Off"})


def pixels(result):
    return np.asarray(result.images[0].convert("RGB"), dtype=np.int16)


@pytest.fixture(scope="module")
def plain(compat_app):
    return compat_app.generate(SMALL, save_images=False)


def test_callbacks_see_each_pass_and_the_guided_result(compat_app, plain):
    recorded = probe_module(compat_app).RECORDED
    recorded.clear()
    with probe_mode(compat_app, "Record"):
        result = compat_app.generate(SMALL, save_images=False)
    assert [(name, step, total) for name, step, total, _ in recorded] == [
        ("denoised", 0, 2), ("after_cfg", 0, 2), ("denoised", 1, 2), ("after_cfg", 1, 2)
    ]  # fmt: skip
    denoised, guided = recorded[0][3], recorded[1][3]
    # the whole CFG batch [uncond, cond] of latent predictions → one guided prediction
    assert denoised.shape[0] == 2 and guided.shape[0] == 1 and denoised.shape[1:] == guided.shape[1:]
    uncond, cond = denoised.split(1)
    torch.testing.assert_close(guided, uncond + 5 * (cond - uncond))
    assert np.array_equal(pixels(result), pixels(plain))  # looking changes nothing


def test_what_the_callbacks_put_back_is_what_the_sampler_uses(compat_app, plain):
    with probe_mode(compat_app, "Zero denoised"):
        zero_denoised = pixels(compat_app.generate(SMALL, save_images=False))
    with probe_mode(compat_app, "Zero after CFG"):
        zero_guided = pixels(compat_app.generate(SMALL, save_images=False))
    assert np.abs(zero_denoised - pixels(plain)).max() > 20  # a zero prediction: no denoising at all
    assert np.abs(zero_denoised - zero_guided).max() <= 1  # both make the guided prediction zero
