"""A1111's post_sample (the latents before decoding) and before_hr (p before hires fix's second pass),
with the fixture script "Latent tools"."""

from __future__ import annotations

import numpy as np
import pytest

from webui.core.params import Txt2Img

pytestmark = pytest.mark.usefixtures("one_torch_thread")

BASE = Txt2Img(prompt="a red circle", steps=3, width=64, height=64, sampler_name="Euler", seed=11)
HIRES = BASE.replace(enable_hr=True, hr_scale=1.5, hr_upscaler="Latent", denoising_strength=0.7)


def tools(app):
    return next(loaded.script for loaded in app.plugins.scripts if loaded.script.title() == "Latent tools")


def with_mode(params, mode):
    return params.replace(alwayson_scripts=(("Latent tools", (mode,)),))


def pixels(image):
    return np.asarray(image.convert("RGB"), dtype=np.int16)


def test_post_sample_sees_and_replaces_the_latents_before_decoding(compat_app):
    tools(compat_app).latent_shapes.clear()
    plain = compat_app.generate(BASE.replace(batch_size=2), save_images=False)
    zeroed = compat_app.generate(with_mode(BASE.replace(batch_size=2), "Zero latents"), save_images=False)
    side = 64 // compat_app.manager.get().pipe.vae_scale_factor
    assert tools(compat_app).latent_shapes == [(2, 4, side, side)]  # one batch of two
    first = plain.index_of_first_image
    made, replaced = plain.images[first:], zeroed.images[first:]
    assert not np.array_equal(pixels(made[0]), pixels(made[1]))  # two seeds, two pictures
    # all-zero latents decode to one and the same picture, whatever the seed
    assert np.array_equal(pixels(replaced[0]), pixels(replaced[1]))
    assert not np.array_equal(pixels(replaced[0]), pixels(made[0]))


def test_before_hr_changes_reach_the_second_pass(compat_app):
    tools(compat_app).before_hr_calls = 0
    changed = compat_app.generate(with_mode(HIRES, "No hires denoising"), save_images=False)
    asked = compat_app.generate(HIRES.replace(denoising_strength=0.0), save_images=False)
    plain = compat_app.generate(HIRES, save_images=False)
    assert tools(compat_app).before_hr_calls == 1
    assert changed.images[0].size == (96, 96)
    assert np.array_equal(pixels(changed.images[0]), pixels(asked.images[0]))
    assert not np.array_equal(pixels(changed.images[0]), pixels(plain.images[0]))


def test_without_the_hooks_the_run_is_unchanged(compat_app):
    off = compat_app.generate(with_mode(BASE, "Off"), save_images=False)
    plain = compat_app.generate(BASE, save_images=False)
    assert np.array_equal(pixels(off.images[0]), pixels(plain.images[0]))
