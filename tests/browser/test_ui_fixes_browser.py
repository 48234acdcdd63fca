"""Chromium on a real server: what broke or confused a new A1111 user (issue 20, "Broken today")."""

from __future__ import annotations

import pytest
from PIL import Image

from tests.browser.helpers import open_ui, playwright

pytestmark = pytest.mark.browser


def test_img2img_resize_by_shows_the_output_size(browser, running_app, tmp_path):
    """Item 1: "Resize by" raised TypeError ('Markdown' object is not callable); the note stayed blank."""
    _, base_url = running_app
    picture = tmp_path / "input.png"
    Image.new("RGB", (64, 48), "blue").save(picture)
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    open_ui(page, base_url)
    page.get_by_role("tab", name="img2img", exact=True).click()
    page.get_by_role("tab", name="Resize by").click()
    note = page.locator("#img2img_scale_note")
    playwright.expect(note).to_contain_text("Upload an image to see its new size.", timeout=30_000)
    page.locator("#img2img_image input[type=file]").set_input_files(str(picture))
    playwright.expect(page.locator("#img2img_image img")).to_be_visible(timeout=30_000)
    scale = page.locator("#img2img_scale input[type=number]")
    scale.fill("2")
    scale.press("Enter")
    playwright.expect(note).to_contain_text("Resize from: 64x48 to: 128x96", timeout=30_000)
    assert page.get_by_text("'Markdown' object is not callable").count() == 0
    page.close()
