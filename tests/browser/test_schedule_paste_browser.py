"""Pasting a sampler with its schedule type in Chromium (issue 18, issue 20 #2): both dropdowns are set,
never blanked, and Generate runs the pair; a value that cannot be used says so in a toast."""

from __future__ import annotations

import re

import pytest

from tests.browser.helpers import choose, open_ui, playwright

pytestmark = pytest.mark.browser


def test_pasting_euler_a_with_karras_sets_both_and_generates(browser, running_app):
    _, base_url = running_app
    page = browser.new_page()
    open_ui(page, base_url)
    choose(page, "txt2img_sampling", "DDIM")  # another sampler first: the paste changes it
    prompt = page.locator("#txt2img_prompt textarea")
    prompt.fill(
        "a red circle\nSteps: 2, Sampler: Euler a, Schedule type: Karras, CFG scale: 5, Seed: 77, Size: 64x64"
    )
    page.locator("#txt2img_paste").click()
    playwright.expect(prompt).to_have_value("a red circle", timeout=30_000)
    sampler = page.locator("#txt2img_sampling input")
    schedule = page.locator("#txt2img_scheduler input")
    playwright.expect(sampler).to_have_value("Euler a", timeout=10_000)
    playwright.expect(schedule).to_have_value("Karras", timeout=10_000)
    page.wait_for_timeout(1_000)  # a late change event must not blank or reset it
    assert (sampler.input_value(), schedule.input_value()) == ("Euler a", "Karras")

    page.locator("#txt2img_generate").click()
    infotext = page.locator("#txt2img_infotext textarea")
    playwright.expect(infotext).to_have_value(re.compile("Seed: 77"), timeout=120_000)
    assert "Sampler: Euler a, Schedule type: Karras" in infotext.input_value()
    page.close()


def test_every_sampler_offers_every_schedule_type(browser, running_app):
    _, base_url = running_app
    page = browser.new_page()
    open_ui(page, base_url)
    choose(page, "txt2img_sampling", "DDIM")
    page.locator("#txt2img_scheduler input").click()
    options = page.locator("#txt2img_scheduler [role=option]")
    playwright.expect(options.filter(has_text="Karras")).to_have_count(1, timeout=10_000)
    offered = [text.strip("✓\n ") for text in options.all_inner_texts()]
    assert offered[:3] == ["Automatic", "Uniform", "Karras"] and "Align Your Steps" in offered
    page.close()


def test_an_unknown_schedule_type_keeps_the_sampler_and_says_so(browser, running_app):
    _, base_url = running_app
    page = browser.new_page()
    open_ui(page, base_url)
    prompt = page.locator("#txt2img_prompt textarea")
    prompt.fill("a boat\nSteps: 3, Sampler: DPM2 a, Schedule type: Turbo, Seed: 5, Size: 64x64")
    page.locator("#txt2img_paste").click()
    playwright.expect(page.locator("#txt2img_sampling input")).to_have_value("DPM2 a", timeout=30_000)
    playwright.expect(page.get_by_text(re.compile("Schedule type not pasted.*Turbo"))).to_be_visible()
    assert page.locator("#txt2img_scheduler input").input_value() == "Automatic"
    page.close()
