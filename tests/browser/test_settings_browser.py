"""Settings in Chromium: the quicksettings row, and the Settings tab persisting an option that the next
generation uses."""

from __future__ import annotations

import json
import re

import pytest

from tests.browser.helpers import open_ui, playwright, set_number

pytestmark = pytest.mark.browser


def test_quicksettings_row_shows_the_listed_options_and_applies_at_once(browser, running_app):
    app, base_url = running_app
    page = browser.new_page()
    open_ui(page, base_url)
    row = page.locator("#quicksettings")
    for name in app.settings.get("quicksettings_list"):
        playwright.expect(row.locator(f"#setting_{name}")).to_be_visible()
    assert row.locator("#setting_sd_vae input").input_value() == "Automatic"
    # Quicksettings are not repeated in the Settings tab.
    assert page.locator("#setting_sd_vae").count() == 1
    try:  # Clip skip is a slider of each tab; the setting (its default) lives in the Settings tab
        page.get_by_role("tab", name="Settings").click()
        set_number(page, "setting_CLIP_stop_at_last_layers", 3)
        page.locator("#settings_submit").click()
        clip_skip = page.locator("#txt2img_clip_skip input[type=number]")
        playwright.expect(clip_skip).to_have_value("3", timeout=30_000)  # the tab's slider follows
        assert app.settings.get("CLIP_stop_at_last_layers") == 3
        stored = json.loads(app.paths.config_file.read_text(encoding="utf-8"))
        assert stored["CLIP_stop_at_last_layers"] == 3
    finally:
        app.update_options({"CLIP_stop_at_last_layers": 1})
    page.close()


def test_settings_tab_applies_samples_format_and_next_image_is_jpg(browser, running_app):
    app, base_url = running_app
    page = browser.new_page()
    open_ui(page, base_url)
    page.get_by_role("tab", name="Settings").click()
    box = page.locator("#setting_samples_format input")
    box.click()
    box.fill("jpg")  # filters the list: "jpeg" does not contain it
    page.locator("#setting_samples_format [role=option]").filter(has_text="jpg").first.click()
    page.locator(
        "#setting_samples_filename_pattern textarea, #setting_samples_filename_pattern input"
    ).first.fill("[seed]-[steps]")
    try:
        page.locator("#settings_submit").click()
        result = page.locator("#settings_result")
        playwright.expect(result).to_contain_text("2 settings changed", timeout=30_000)
        stored = json.loads(app.paths.config_file.read_text(encoding="utf-8"))
        assert stored["samples_format"] == "jpg" and stored["samples_filename_pattern"] == "[seed]-[steps]"

        page.get_by_role("tab", name="txt2img").click()
        set_number(page, "txt2img_width", 64)
        set_number(page, "txt2img_height", 64)
        set_number(page, "txt2img_steps", 2)
        page.locator("#txt2img_seed input").fill("55")
        page.locator("#txt2img_generate").click()
        infotext = page.locator("#txt2img_infotext textarea")
        playwright.expect(infotext).to_have_value(re.compile("Seed: 55,"), timeout=60_000)
        saved = [p.name for p in app.paths.outputs_dir.glob("txt2img-images/*/*") if "-55-" in p.name]
        assert len(saved) == 1 and re.fullmatch(r"\d{5}-55-2\.jpg", saved[0])
    finally:
        app.update_options({"samples_format": "png", "samples_filename_pattern": ""})
    page.close()


def test_save_a_style_from_the_prompt_boxes_and_apply_it(browser, running_app):
    app, base_url = running_app
    page = browser.new_page()
    open_ui(page, base_url)
    prompt = page.locator("#txt2img_prompt textarea")
    negative = page.locator("#txt2img_neg_prompt textarea")
    prompt.fill("{prompt}, warm light")
    negative.fill("cold")
    page.locator("#txt2img_style_create").click()
    page.locator("#txt2img_style_name input, #txt2img_style_name textarea").first.fill("warm")
    page.locator("#txt2img_style_save").click()
    playwright.expect(page.locator("#txt2img_style_editor")).to_be_hidden(timeout=30_000)
    try:
        assert app.styles.get("warm").prompt == "{prompt}, warm light"
        prompt.fill("a dog")
        negative.fill("")
        styles = page.locator("#txt2img_styles input")
        styles.click()
        page.locator("#txt2img_styles [role=option]").filter(has_text="warm").first.click()
        page.locator("#txt2img_style_apply").click()
        playwright.expect(prompt).to_have_value("a dog, warm light", timeout=30_000)
        assert negative.input_value() == "cold"
    finally:
        app.styles.delete("warm")
    page.close()
