"""A real browser (Debian Chromium through playwright) types a prompt, clicks Generate, sees the image."""

from __future__ import annotations

import base64
import io
import re

import pytest
from PIL import Image

from tests.browser.helpers import choose, open_ui, playwright, set_number

pytestmark = pytest.mark.browser


def test_type_prompt_generate_and_see_image_with_infotext(browser, running_app):
    app, base_url = running_app
    page = browser.new_page()
    open_ui(page, base_url)
    # The checkpoint dropdown shows the loaded model's A1111 title.
    title = app.current_checkpoint_title()
    assert page.locator("#setting_sd_model_checkpoint input").input_value() == title

    page.locator("#txt2img_prompt textarea").fill("a red circle, (masterpiece:1.2)")
    page.locator("#txt2img_neg_prompt textarea").fill("blurry")
    set_number(page, "txt2img_width", 64)
    set_number(page, "txt2img_height", 96)
    set_number(page, "txt2img_steps", 3)
    page.locator("#txt2img_seed input").fill("1234")
    page.locator("#txt2img_generate").click()

    infotext = page.locator("#txt2img_infotext textarea")
    playwright.expect(infotext).to_have_value(re.compile(re.escape("Seed: 1234")), timeout=60_000)
    text = infotext.input_value()
    assert text.startswith("a red circle, (masterpiece:1.2)\nNegative prompt: blurry\nSteps: 3, ")
    assert "Size: 64x96" in text and f"Model: {app.registry.entries[0].model_name}" in text

    image = page.locator("#txt2img_gallery img").first
    playwright.expect(image).to_be_visible()
    # The browser really received the generated picture: fetch it from the page and check its size.
    data_url = image.evaluate(
        """async (img) => { const blob = await (await fetch(img.src)).blob();
            return await new Promise(done => { const r = new FileReader(); r.onload = () => done(r.result);
            r.readAsDataURL(blob); }); }"""
    )
    picture = Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1])))
    assert picture.size == (64, 96)

    saved = sorted(app.paths.outputs_dir.glob("txt2img-images/*/*.png"))
    assert [p.name for p in saved] == ["00000-1234.png"]
    assert Image.open(saved[0]).info["parameters"] == text
    page.close()


def test_broken_checkpoint_shows_clear_error_and_previous_model_stays(browser, running_app):
    app, base_url = running_app
    before = app.current_checkpoint_title()
    broken = app.paths.ckpt_dir / "broken.safetensors"
    broken.write_bytes(b"this is not a checkpoint at all")
    try:
        page = browser.new_page()
        open_ui(page, base_url)
        page.locator("#refresh_sd_model_checkpoint").click()
        choose(page, "setting_sd_model_checkpoint", "broken.safetensors")
        warning = page.get_by_text("broken.safetensors: not a valid safetensors file")
        playwright.expect(warning).to_be_visible(timeout=30_000)
        dropdown = page.locator("#setting_sd_model_checkpoint input")
        playwright.expect(dropdown).to_have_value(before, timeout=30_000)
        assert app.current_checkpoint_title() == before
        set_number(page, "txt2img_width", 64)
        set_number(page, "txt2img_height", 64)
        set_number(page, "txt2img_steps", 2)
        page.locator("#txt2img_generate").click()
        playwright.expect(page.locator("#txt2img_infotext textarea")).to_have_value(
            re.compile(re.escape("Steps: 2,")), timeout=60_000
        )
        page.close()
    finally:
        broken.unlink()
        app.refresh_checkpoints()
