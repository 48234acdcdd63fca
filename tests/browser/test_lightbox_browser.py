"""Chromium on a real server: the galleries' lightbox (issue 20, javascript/lightbox.js). gradio's preview
gives ←/→ and a full-screen button; A1111's lightbox adds a full-page view with zoom and pan."""

from __future__ import annotations

import re

import pytest

from tests.browser.helpers import open_ui, playwright, set_number

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("one_torch_thread")]


def rendered_width(image) -> float:
    return image.evaluate("img => img.getBoundingClientRect().width")


def seed_of(infotext) -> int:
    return int(re.search(r"Seed: (\d+)", infotext.input_value())[1])


def test_lightbox_opens_full_page_moves_with_arrows_zooms_pans_and_closes(browser, running_app):
    _, base_url = running_app
    page = browser.new_page(viewport={"width": 1000, "height": 800})
    open_ui(page, base_url)
    for elem_id, value in (("txt2img_steps", 1), ("txt2img_width", 64), ("txt2img_height", 64),
                           ("txt2img_batch_size", 2)):  # fmt: skip
        set_number(page, elem_id, value)
    page.locator("#txt2img_generate").click()
    gallery = page.locator("#txt2img_gallery")
    thumbnails = gallery.locator("button.thumbnail-item")
    playwright.expect(thumbnails).to_have_count(3, timeout=120_000)  # the batch grid and two images
    # the run over (the gallery no longer changes under the clicks)
    playwright.expect(page.locator("#txt2img_generate")).to_be_visible(timeout=60_000)
    thumbnails.nth(1).click()  # the first image (after the grid)
    infotext = page.locator("#txt2img_infotext textarea")
    playwright.expect(infotext).to_have_value(re.compile(r"Seed: \d+"))
    first_seed = seed_of(infotext)

    gallery.locator(".preview img").first.click()  # the large image opens the lightbox
    lightbox = page.locator("#webui_lightbox")
    playwright.expect(lightbox).to_be_visible()
    image = page.locator("#webui_lightbox_image")
    box = lightbox.bounding_box()
    assert box["width"] == 1000 and box["height"] == 800  # the full page
    # fitted: the 64² image fills the window's height
    playwright.expect(page.locator("#webui_lightbox_zoom")).to_contain_text("Fit")
    assert rendered_width(image) == pytest.approx(800, abs=2)
    first_src = image.get_attribute("src")

    page.keyboard.press("ArrowRight")  # the next image; gradio's selection and the infotext follow
    playwright.expect(image).not_to_have_attribute("src", first_src)
    playwright.expect(infotext).to_have_value(re.compile(f"Seed: {first_seed + 1},"))
    page.keyboard.press("ArrowLeft")
    playwright.expect(image).to_have_attribute("src", first_src)
    playwright.expect(infotext).to_have_value(re.compile(f"Seed: {first_seed},"))

    image.click()  # 100 %: the image's own size
    playwright.expect(page.locator("#webui_lightbox_zoom")).to_have_text("100 %")
    assert rendered_width(image) == pytest.approx(64, abs=1)
    image.hover()
    for _ in range(20):  # the wheel zooms in around the pointer, beyond the window
        page.mouse.wheel(0, -100)
    playwright.expect(page.locator("#webui_lightbox_zoom")).not_to_have_text("100 %")
    assert rendered_width(image) > 1000
    frame = lightbox.locator(".webui-lightbox-frame")
    before = frame.evaluate("f => [f.scrollLeft, f.scrollTop]")
    page.mouse.move(500, 400)
    page.mouse.down()
    page.mouse.move(400, 300, steps=5)  # drag: pans the zoomed image
    page.mouse.up()
    after = frame.evaluate("f => [f.scrollLeft, f.scrollTop]")
    assert after[0] == pytest.approx(before[0] + 100, abs=2) and after[1] == pytest.approx(
        before[1] + 100, abs=2
    )
    playwright.expect(lightbox).to_be_visible()  # a drag is not a click: it neither zooms nor closes

    page.keyboard.press("Escape")
    playwright.expect(lightbox).to_be_hidden()
    playwright.expect(infotext).to_have_value(re.compile(f"Seed: {first_seed},"))  # gradio's preview stays
    page.close()
