"""The "Extra" seed controls in Chromium (issue 18): hidden until ticked, opened and filled by a pasted
variation seed / seed resize, used by Generate, ♻️ takes the shown image's variation seed, and unticking
turns the variation off."""

from __future__ import annotations

import re

import pytest

from tests.browser.helpers import open_ui, playwright

pytestmark = pytest.mark.browser


def number(page, elem_id: str):
    return page.locator(f"#{elem_id} input[type=number]")


def test_pasted_variation_opens_extra_and_generates_with_it(browser, running_app):
    _, base_url = running_app
    page = browser.new_page()
    open_ui(page, base_url)
    extra = page.locator("#txt2img_subseed_show input[type=checkbox]")
    assert not extra.is_checked() and not page.locator("#txt2img_subseed").is_visible()
    prompt = page.locator("#txt2img_prompt textarea")
    prompt.fill(
        "a red circle\nSteps: 2, Sampler: Euler, CFG scale: 5, Seed: 77, Size: 64x64, Variation seed: 4242, "
        "Variation seed strength: 0.35, Seed resize from: 128x96"
    )
    page.locator("#txt2img_paste").click()
    playwright.expect(prompt).to_have_value("a red circle", timeout=30_000)
    playwright.expect(extra).to_be_checked(timeout=10_000)
    playwright.expect(number(page, "txt2img_subseed")).to_have_value("4242")
    playwright.expect(number(page, "txt2img_subseed_strength")).to_have_value("0.35")
    playwright.expect(number(page, "txt2img_seed_resize_from_w")).to_have_value("128")
    playwright.expect(number(page, "txt2img_seed_resize_from_h")).to_have_value("96")

    page.locator("#txt2img_generate").click()
    infotext = page.locator("#txt2img_infotext textarea")
    playwright.expect(infotext).to_have_value(re.compile("Seed: 77"), timeout=120_000)
    text = infotext.input_value()
    assert "Variation seed: 4242, Variation seed strength: 0.35, Seed resize from: 128x96" in text

    page.locator("#txt2img_random_subseed").click()
    playwright.expect(number(page, "txt2img_subseed")).to_have_value("-1")
    page.locator("#txt2img_reuse_subseed").click()
    playwright.expect(number(page, "txt2img_subseed")).to_have_value("4242")

    extra.uncheck()
    playwright.expect(page.locator("#txt2img_subseed")).to_be_hidden(timeout=10_000)
    extra.check()
    playwright.expect(number(page, "txt2img_subseed_strength")).to_have_value("0")
    playwright.expect(number(page, "txt2img_seed_resize_from_w")).to_have_value("0")
    page.close()
