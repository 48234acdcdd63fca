"""The fixture A1111 extensions in Chromium: their on_ui_tabs tab (gradio 3 idioms; a handler reading
shared.opts), their on_ui_settings option in Settings, and their infotext_fields filled by Paste."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.browser.helpers import open_ui, playwright

pytestmark = pytest.mark.browser


def text_input(page: Any, elem_id: str) -> Any:
    return page.locator(f"#{elem_id} textarea, #{elem_id} input").first


def test_tab_setting_and_paste_of_a1111_extensions(browser, compat_server):
    app, base_url = compat_server
    page = browser.new_page()
    open_ui(page, base_url)

    page.get_by_role("tab", name="Notes").click()
    text_input(page, "notes_tab_text").fill("   keep me ")  # the tab's _js trims it in the page
    page.locator("#notes_tab_keep").click()
    folder = app.settings.get("outdir_txt2img_samples")
    playwright.expect(text_input(page, "notes_tab_kept")).to_have_value(
        f"keep me (images go to {folder})", timeout=30_000
    )

    page.get_by_role("tab", name="Settings").click()
    setting = page.locator("#setting_prompt_suffix_text")
    setting.scroll_into_view_if_needed()
    playwright.expect(setting).to_contain_text("Text appended to every prompt")
    assert text_input(page, "setting_prompt_suffix_text").input_value() == "in watercolor"

    page.get_by_role("tab", name="txt2img").click()
    pasted = "a fox\nSteps: 3, Sampler: Euler, CFG scale: 5, Seed: 9, Size: 64x64, Prompt suffix: at dusk"
    text_input(page, "txt2img_prompt").fill(pasted)
    page.locator("#txt2img_paste").click()
    section = page.locator("#txt2img_script_prompt_suffix")
    section.get_by_text("Prompt suffix").first.click()  # our accordion around the script's ui()
    section.get_by_text("Prompt suffix").nth(1).click()  # the extension's own gr.Accordion
    playwright.expect(text_input(page, "txt2img_prompt_suffix_text")).to_have_value("at dusk", timeout=30_000)
    playwright.expect(text_input(page, "txt2img_prompt")).to_have_value(re.compile("^a fox$"))
    page.close()


def test_ratio_buttons_set_the_size_and_their_javascript_runs(browser, compat_server):
    """The fixture "Ratio buttons": its buttons (a ToolButton subclass with an __init__ of its own) show
    their labels, set our width slider through the sliders after_component found, and its javascript's
    onUiLoaded / onUiUpdate (A1111's page functions) run."""
    _, base_url = compat_server
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    open_ui(page, base_url)
    page.locator("#txt2img_script_ratio_buttons").get_by_text("Ratio buttons").first.click()
    button = page.locator("#txt2img_ratio_2_1")
    playwright.expect(button).to_have_text("2:1")
    playwright.expect(page.locator("body")).to_have_attribute("data-ratio-buttons-loaded", "yes")
    playwright.expect(button).to_have_attribute("title", "Set the size to 2:1", timeout=10_000)
    height = page.locator("#txt2img_height input[type=number]").input_value()
    button.click()
    width = page.locator("#txt2img_width input[type=number]")
    playwright.expect(width).to_have_value(str(2 * int(height)), timeout=30_000)
    assert errors == []
    page.close()
