"""Chromium on a real server: the small conveniences A1111 users reach for (issue 20, our own JavaScript
in webui/ui/javascript/ and a few buttons)."""

from __future__ import annotations

import re
import time

import pytest

from tests.browser.helpers import open_ui, playwright, set_number

pytestmark = pytest.mark.browser


def select(box, text: str) -> None:
    """Select the first `text` in the textarea `box`."""
    box.evaluate(
        """(el, text) => { el.focus(); const at = el.value.indexOf(text);
            el.setSelectionRange(at, at + text.length); }""",
        text,
    )


def caret(box, at: int) -> None:
    box.evaluate("(el, at) => { el.focus(); el.setSelectionRange(at, at); }", at)


def test_prompt_keys_clear_and_swap_buttons(browser, running_app):
    _, base_url = running_app
    page = browser.new_page()
    open_ui(page, base_url)
    prompt = page.locator("#txt2img_prompt textarea")
    prompt.fill("a cat, blue sky, moon")

    # Ctrl+↑/↓: the weight of the selected words in 0.1 steps; back at 1 the brackets go
    select(prompt, "cat")
    prompt.press("Control+ArrowUp")
    playwright.expect(prompt).to_have_value("a (cat:1.1), blue sky, moon")
    prompt.press("Control+ArrowUp")
    playwright.expect(prompt).to_have_value("a (cat:1.2), blue sky, moon")
    prompt.press("Control+ArrowDown")
    prompt.press("Control+ArrowDown")
    playwright.expect(prompt).to_have_value("a cat, blue sky, moon")
    caret(prompt, len("a cat, bl"))  # no selection: the word at the caret
    prompt.press("Control+ArrowDown")
    playwright.expect(prompt).to_have_value("a cat, (blue:0.9) sky, moon")

    # Alt+←/→ moves the tag at the caret
    prompt.fill("a cat, blue sky, moon")
    caret(prompt, 2)
    prompt.press("Alt+ArrowRight")
    playwright.expect(prompt).to_have_value("blue sky, a cat, moon")
    prompt.press("Alt+ArrowRight")
    playwright.expect(prompt).to_have_value("blue sky, moon, a cat")
    prompt.press("Alt+ArrowLeft")
    playwright.expect(prompt).to_have_value("blue sky, a cat, moon")

    # ⇅ swaps width and height; 🗑️ clears both prompts
    set_number(page, "txt2img_width", 64)
    set_number(page, "txt2img_height", 128)
    page.locator("#txt2img_res_switch_btn").click()
    playwright.expect(page.locator("#txt2img_width input[type=number]")).to_have_value("128")
    playwright.expect(page.locator("#txt2img_height input[type=number]")).to_have_value("64")
    page.locator("#txt2img_neg_prompt textarea").fill("blurry")
    page.locator("#txt2img_clear_prompt").click()
    playwright.expect(prompt).to_have_value("")
    playwright.expect(page.locator("#txt2img_neg_prompt textarea")).to_have_value("")
    page.close()


def test_settings_search_box_and_readable_summary(browser, running_app):
    """Settings: the search box keeps only matching settings; the applied summary names settings by their
    labels, not internal keys (item 15)."""
    app, base_url = running_app
    page = browser.new_page()
    open_ui(page, base_url)
    page.get_by_role("tab", name="Settings").click()
    search = page.locator("#settings_search textarea, #settings_search input").first
    search.fill("jpeg quality")
    playwright.expect(page.locator("#setting_jpeg_quality")).to_be_visible()
    playwright.expect(page.locator("#setting_samples_save")).to_be_hidden()
    search.fill("")
    playwright.expect(page.locator("#setting_samples_save")).to_be_visible()
    try:
        page.locator("#setting_save_txt input[type=checkbox]").check()
        page.locator("#settings_submit").click()
        playwright.expect(page.locator("#settings_result")).to_contain_text(
            "1 settings changed: Create a text file with infotext next to every image.", timeout=30_000
        )
    finally:
        app.settings.update({"save_txt": False})
    page.close()


def test_right_click_generate_forever_and_cancel(browser, running_app):
    app, base_url = running_app
    page = browser.new_page()
    open_ui(page, base_url)
    set_number(page, "txt2img_width", 64)
    set_number(page, "txt2img_height", 64)
    set_number(page, "txt2img_steps", 2)
    before = len(list(app.paths.outputs_dir.glob("txt2img-images/*/*.png")))
    page.locator("#txt2img_generate").click(button="right")
    page.get_by_role("menuitem", name="Generate forever", exact=True).click()
    infotext = page.locator("#txt2img_infotext textarea")
    seeds: set[str] = set()
    deadline = time.monotonic() + 120
    while len(seeds) < 3:  # each run a new random seed: three seen means it went on by itself
        assert time.monotonic() < deadline, seeds
        found = re.search(r"Seed: (\d+)", infotext.input_value())
        if found:
            seeds.add(found[1])
        page.wait_for_timeout(200)
    page.locator("#txt2img_generate:visible, #txt2img_interrupt:visible").first.click(button="right")
    page.get_by_role("menuitem", name="Cancel generate forever").click()
    playwright.expect(page.locator("#txt2img_generate")).to_be_visible(timeout=60_000)
    page.wait_for_timeout(1500)  # no further run starts
    count = len(list(app.paths.outputs_dir.glob("txt2img-images/*/*.png")))
    page.wait_for_timeout(3000)
    assert len(list(app.paths.outputs_dir.glob("txt2img-images/*/*.png"))) == count >= before + 3
    page.close()
