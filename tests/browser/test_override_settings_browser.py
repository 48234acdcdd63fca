"""A1111's "Override settings" box in Chromium (issue 18): pasting an infotext that carries settings
(RNG, ENSD) shows them in the box; Generate runs with them for that job, the image's infotext carries them,
and the server's settings stay as they were; PNG Info's "Send to" fills the box the same way."""

from __future__ import annotations

import re

import pytest

from tests.browser.helpers import open_ui, playwright

pytestmark = pytest.mark.browser


def test_pasted_settings_override_the_next_job_only(browser, running_app):
    app, base_url = running_app
    before = app.settings.as_dict()
    page = browser.new_page()
    open_ui(page, base_url)
    box = page.locator("#txt2img_override_settings")
    assert not box.is_visible()
    prompt = page.locator("#txt2img_prompt textarea")
    prompt.fill(
        "a blue square\nSteps: 2, Sampler: Euler a, CFG scale: 5, Seed: 31, Size: 64x64, "
        "RNG: CPU, ENSD: 31337"
    )
    page.locator("#txt2img_paste").click()
    playwright.expect(prompt).to_have_value("a blue square", timeout=30_000)
    playwright.expect(box).to_be_visible(timeout=10_000)
    playwright.expect(box).to_contain_text("ENSD: 31337")
    playwright.expect(box).to_contain_text("RNG: CPU")

    page.locator("#txt2img_generate").click()
    infotext = page.locator("#txt2img_infotext textarea")
    playwright.expect(infotext).to_have_value(re.compile("Seed: 31"), timeout=120_000)
    text = infotext.input_value()
    assert "ENSD: 31337" in text and "RNG: CPU" in text
    assert app.settings.as_dict() == before
    assert (before["randn_source"], before["eta_noise_seed_delta"]) == ("GPU", 0)

    # PNG Info's "Send to" pastes the same way: the saved image's settings fill img2img's box
    saved = max(app.paths.outputs_dir.glob("txt2img-images/*/*.png"), key=lambda path: path.stat().st_mtime)
    page.get_by_role("tab", name="PNG Info").click()
    page.locator("#pnginfo_image input[type=file]").set_input_files(str(saved))
    playwright.expect(page.locator("#pnginfo_generation_info textarea")).to_have_value(
        re.compile("ENSD: 31337"), timeout=30_000
    )
    page.locator("#pnginfo_send_to_img2img").click()
    img2img_box = page.locator("#img2img_override_settings")
    playwright.expect(img2img_box).to_be_visible(timeout=30_000)
    playwright.expect(img2img_box).to_contain_text("ENSD: 31337")
    playwright.expect(img2img_box).to_contain_text("RNG: CPU")
    page.close()
