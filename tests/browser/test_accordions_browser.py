"""The "Hires. fix" and "Refiner" accordions in Chromium are their own on/off switch (A1111's InputAccordion,
ui/input_accordion.py): the checkbox in the header and the open state follow each other both ways, a
paste with the section's keys opens and ticks it, a paste without them closes it, and Generate sees it.
Also the layout fixes a new user's tour at 800 px called for (style.css)."""

from __future__ import annotations

import re

import pytest

from tests.browser.helpers import open_ui, playwright

pytestmark = pytest.mark.browser

OPEN = re.compile(r"\bopen\b")
PLAIN = "a red circle\nSteps: 2, Sampler: Euler, Schedule type: Automatic, CFG scale: 5, Seed: 9, Size: 64x64"
CHECKBOXES = {"txt2img_hr": "txt2img_enable_hr", "txt2img_refiner": "txt2img_enable_refiner"}
HIRES = f"{PLAIN}, Denoising strength: 0.5, Hires upscale: 1.5, Hires steps: 1, Hires upscaler: Latent"


def expect_state(page, section: str, on: bool) -> None:
    """The header checkbox ticked and the accordion open exactly when `on` (the checkbox stays visible)."""
    header = page.locator(f"#{section} > .label-wrap")
    checkbox = page.locator(f"#{CHECKBOXES[section]} input")
    playwright.expect(checkbox).to_be_visible()
    if on:
        playwright.expect(checkbox).to_be_checked(timeout=10_000)
        playwright.expect(header).to_have_class(OPEN, timeout=10_000)
    else:
        playwright.expect(checkbox).not_to_be_checked(timeout=10_000)
        playwright.expect(header).not_to_have_class(OPEN, timeout=10_000)


def paste(page, text: str) -> None:
    prompt = page.locator("#txt2img_prompt textarea")
    prompt.fill(text)
    page.locator("#txt2img_paste").click()
    playwright.expect(prompt).to_have_value(text.splitlines()[0], timeout=30_000)


def generate(page) -> str:
    """The infotext of the image Generate makes with the page's controls."""
    infotext = page.locator("#txt2img_infotext textarea")
    page.locator("#txt2img_generate").click()
    playwright.expect(infotext).to_have_value(re.compile("Seed: 9"), timeout=180_000)
    return infotext.input_value()


@pytest.mark.parametrize("section", ["txt2img_hr", "txt2img_refiner"])
def test_the_header_checkbox_and_the_open_state_follow_each_other(browser, running_app, section):
    _, base_url = running_app
    page = browser.new_page()
    open_ui(page, base_url)
    header = page.locator(f"#{section} > .label-wrap")
    checkbox = page.locator(f"#{CHECKBOXES[section]} input")
    expect_state(page, section, on=False)
    header.click()  # opening ticks
    expect_state(page, section, on=True)
    header.click()  # closing unticks
    expect_state(page, section, on=False)
    checkbox.click()  # ticking opens
    expect_state(page, section, on=True)
    checkbox.click()  # unticking closes
    expect_state(page, section, on=False)
    for _ in range(5):  # quick toggles settle where the last click left them, no ping-pong
        header.click()
    expect_state(page, section, on=True)
    page.wait_for_timeout(500)
    expect_state(page, section, on=True)
    page.close()


def test_opening_hires_fix_turns_it_on_for_generate_and_paste_opens_or_closes_it(browser, running_app):
    _, base_url = running_app
    page = browser.new_page()
    open_ui(page, base_url)
    paste(page, PLAIN)
    page.locator("#txt2img_hr > .label-wrap").click()  # only opened: hires fix runs
    assert "Hires upscale: 2" in generate(page)
    paste(page, PLAIN)  # no hires keys: closed and off
    expect_state(page, "txt2img_hr", on=False)
    paste(page, HIRES)  # hires keys: opened and on (test_hires_browser generates from such a paste)
    expect_state(page, "txt2img_hr", on=True)
    paste(page, PLAIN)
    expect_state(page, "txt2img_hr", on=False)
    page.close()


def test_paste_opens_the_refiner_with_a_refiner_and_closes_it_without(browser, running_app):
    _, base_url = running_app
    page = browser.new_page()
    open_ui(page, base_url)
    paste(page, f"{PLAIN}, Refiner: tiny-sd1 [0123456789], Refiner switch at: 0.5")
    expect_state(page, "txt2img_refiner", on=True)
    playwright.expect(page.locator("#txt2img_refiner_checkpoint input")).to_have_value(re.compile("tiny-sd1"))
    paste(page, PLAIN)
    expect_state(page, "txt2img_refiner", on=False)
    page.close()


def test_at_800_pixels_every_tab_shows_and_send_to_labels_stay_on_one_line(browser, running_app):
    """What a new user's tour found at 800x800: Settings and Extensions hidden in gradio's "…" menu,
    "Send to inpaint" broken over three lines, an empty gap where the unused Override settings row sits."""
    _, base_url = running_app
    page = browser.new_page(viewport={"width": 800, "height": 800})
    open_ui(page, base_url)
    for name in ("txt2img", "img2img", "Extras", "PNG Info", "Settings", "Extensions"):
        playwright.expect(page.locator("#tabs [role=tab]").filter(has_text=name).first).to_be_visible()
    button = page.locator("#txt2img_send_to_inpaint")
    line = float(button.evaluate("b => parseFloat(getComputedStyle(b).lineHeight)"))
    assert button.evaluate("b => b.scrollHeight") - line < line  # one line of text (plus its padding)
    playwright.expect(page.locator("#txt2img_override_settings_row")).to_be_hidden()
    page.close()
