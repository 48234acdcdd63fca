"""Chromium on a real server: issue 20's leftovers (a regression, #15's smaller items, conveniences)."""

from __future__ import annotations

import re

import pytest
from PIL import Image

from tests.browser.helpers import open_ui, playwright, set_number

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("one_torch_thread")]


def test_img2img_batch_shows_its_progress(browser, running_app):
    """A regression: the Batch section showed no progress at all (gradio's bar, which it fed, is hidden
    since the tab has one progress display of its own). Each file's progress shows in that display."""
    app, base_url = running_app
    folder = app.paths.data_dir / "batch-progress-in"
    folder.mkdir(exist_ok=True)
    for name, colour in (("a.png", "red"), ("b.png", "blue")):
        Image.new("RGB", (64, 64), colour).save(folder / name)
    page = browser.new_page()
    open_ui(page, base_url)
    page.get_by_role("tab", name="img2img", exact=True).click()
    page.get_by_role("tab", name="Batch", exact=True).click()
    page.locator("#img2img_batch_input_dir textarea").fill(folder.name)
    set_number(page, "img2img_steps", 30)
    set_number(page, "img2img_width", 64)
    set_number(page, "img2img_height", 64)
    set_number(page, "img2img_denoising_strength", 1)
    page.locator("#img2img_generate").click()
    progress = page.locator("#img2img_progress")
    try:
        line = re.compile(r"File 1/2: a\.png · step \d+/30 · \d+% · \d+s elapsed")
        playwright.expect(progress).to_contain_text(line, timeout=180_000)
        playwright.expect(progress).to_contain_text("File 2/2: b.png", timeout=180_000)
        page.locator("#img2img_interrupt").click()
    finally:
        app.jobs.interrupt()  # a failed check leaves no batch running for the next test
    playwright.expect(page.locator("#img2img_generate")).to_be_visible(timeout=60_000)
    playwright.expect(progress).to_have_text("Interrupted")
    page.close()
