"""A1111 1.8's ✨ Upscale under txt2img's gallery in Chromium (issue 18): generate a batch, select one
image, ✨ → that image's hires pass (larger, with the Hires keys and its own seed) takes its place."""

from __future__ import annotations

import re

import pytest

from tests.browser.helpers import open_ui, playwright, set_number

pytestmark = pytest.mark.browser

SIZES = "imgs => Promise.all(imgs.map(i => i.decode().then(() => [i.naturalWidth, i.naturalHeight])))"


def test_upscale_runs_the_hires_pass_on_the_selected_image(browser, running_app):
    _, base_url = running_app
    page = browser.new_page()
    open_ui(page, base_url)
    prompt = page.locator("#txt2img_prompt textarea")
    prompt.fill("a green square\nSteps: 2, Sampler: Euler, CFG scale: 5, Seed: 40, Size: 64x64")
    page.locator("#txt2img_paste").click()
    playwright.expect(prompt).to_have_value("a green square", timeout=30_000)
    set_number(page, "txt2img_batch_size", 2)
    page.locator("#txt2img_generate").click()
    infotext = page.locator("#txt2img_infotext textarea")
    playwright.expect(infotext).to_have_value(re.compile("Seed: 40"), timeout=120_000)
    assert "Hires" not in infotext.input_value()

    thumbnails = page.locator("#txt2img_gallery button.thumbnail-item")
    playwright.expect(thumbnails).to_have_count(3, timeout=10_000)  # the grid, then the two images
    thumbnails.nth(2).click()
    playwright.expect(infotext).to_have_value(re.compile("Seed: 41"), timeout=10_000)

    page.locator("#txt2img_upscale").click()
    playwright.expect(infotext).to_have_value(re.compile("Hires upscale: 2"), timeout=180_000)
    text = infotext.input_value()
    assert "Seed: 41" in text and "Size: 64x64" in text and "Denoising strength: 0.7" in text
    # the gallery shows its items twice once one is selected (thumbnails and the preview's strip)
    sizes = page.locator("#txt2img_gallery button.thumbnail-item img").evaluate_all(SIZES)
    assert sizes[:3] == [[128, 64], [64, 64], [128, 128]]  # the grid and the other image as they were
    page.close()
