"""txt2img's "Hires. fix" accordion in Chromium: pasting an A1111 infotext with hires keys fills it, the
line under it says the upscaled size, and Generate makes the second pass."""

from __future__ import annotations

import re

import pytest

from tests.browser.helpers import open_ui, playwright

pytestmark = pytest.mark.browser


def test_pasted_hires_fix_fills_the_accordion_and_generates_at_the_upscaled_size(browser, running_app):
    _, base_url = running_app
    page = browser.new_page()
    open_ui(page, base_url)
    prompt = page.locator("#txt2img_prompt textarea")
    prompt.fill(
        "a red circle\nSteps: 2, Sampler: Euler, Schedule type: Automatic, CFG scale: 5, Seed: 9, "
        "Size: 64x64, Denoising strength: 0.5, Hires upscale: 1.5, Hires steps: 2, "
        "Hires upscaler: Latent (nearest)"
    )
    page.locator("#txt2img_paste").click()
    playwright.expect(prompt).to_have_value("a red circle", timeout=30_000)
    # the paste ticks hires fix, which opens its accordion (ui/input_accordion.py)
    playwright.expect(page.locator("#txt2img_enable_hr input")).to_be_checked(timeout=10_000)
    playwright.expect(page.locator("#txt2img_hr .label-wrap")).to_have_class(re.compile(r"\bopen\b"))
    playwright.expect(page.locator("#txt2img_hr_upscaler input")).to_have_value("Latent (nearest)")
    playwright.expect(page.locator("#txtimg_hr_finalres")).to_contain_text(
        "from 64x64 to 96x96", timeout=10_000
    )

    page.locator("#txt2img_generate").click()
    infotext = page.locator("#txt2img_infotext textarea")
    playwright.expect(infotext).to_have_value(re.compile("Seed: 9"), timeout=180_000)
    text = infotext.input_value()
    assert "Denoising strength: 0.5" in text and "Hires upscale: 1.5, Hires steps: 2" in text
    assert "Hires upscaler: Latent (nearest)" in text
    page.close()
