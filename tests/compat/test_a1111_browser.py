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
