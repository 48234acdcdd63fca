"""Chromium: a txt2img picture goes to Inpaint with "Send to inpaint", the mouse paints a mask on it, and
the inpainted result keeps every pixel away from the stroke."""

from __future__ import annotations

import base64
import io
import re

import pytest
from PIL import Image, ImageChops

from tests.browser.helpers import open_ui, playwright, set_number

pytestmark = pytest.mark.browser


def gallery_image(page, elem_id: str) -> Image.Image:
    """The picture the gallery shows, fetched by the page itself."""
    image = page.locator(f"#{elem_id} img").first
    playwright.expect(image).to_be_visible(timeout=30_000)
    data_url = image.evaluate(
        """async (img) => { const blob = await (await fetch(img.src)).blob();
            return await new Promise(done => { const r = new FileReader(); r.onload = () => done(r.result);
            r.readAsDataURL(blob); }); }"""
    )
    return Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))).convert("RGB")


def test_send_to_inpaint_draw_mask_and_generate(browser, running_app):
    app, base_url = running_app
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    open_ui(page, base_url)
    page.locator("#txt2img_prompt textarea").fill("a green field")
    set_number(page, "txt2img_width", 64)
    set_number(page, "txt2img_height", 64)
    set_number(page, "txt2img_steps", 2)
    page.locator("#txt2img_seed input").fill("4321")
    page.locator("#txt2img_generate").click()
    playwright.expect(page.locator("#txt2img_infotext textarea")).to_have_value(
        re.compile("Seed: 4321"), timeout=60_000
    )
    original = gallery_image(page, "txt2img_gallery")

    page.locator("#txt2img_send_to_inpaint").click()
    # the img2img tab opens on Inpaint with the picture and the parameters of the sent image
    canvas = page.locator("#img2maskimg canvas").first
    playwright.expect(canvas).to_be_visible(timeout=30_000)
    playwright.expect(page.locator("#img2img_prompt textarea")).to_have_value("a green field")
    playwright.expect(page.locator("#img2img_seed input")).to_have_value("4321")
    playwright.expect(page.locator("#img2img_mask_blur")).to_be_visible()  # inpaint controls shown
    # until the editor has drawn the picture (its "Upload an image" prompt goes), strokes are lost
    playwright.expect(page.locator("#img2maskimg")).not_to_contain_text("Upload an image", timeout=30_000)
    page.wait_for_timeout(500)

    box = canvas.bounding_box()
    centre_x, centre_y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(centre_x - 40, centre_y)
    page.mouse.down()
    page.mouse.move(centre_x + 40, centre_y, steps=3)  # each step repaints: slow here
    page.mouse.up()

    set_number(page, "img2img_mask_blur", 0)
    page.locator("#img2img_inpaint_full_res label").filter(has_text="Whole picture").click()
    page.locator("#img2img_denoising_strength input[type=number]").fill("1")
    page.locator("#img2img_denoising_strength input[type=number]").press("Enter")
    page.locator("#img2img_generate").click()
    infotext = page.locator("#img2img_infotext textarea")
    playwright.expect(infotext).to_have_value(re.compile("Mask blur: 0"), timeout=60_000)
    assert "Denoising strength: 1" in infotext.input_value() and "Seed: 4321" in infotext.input_value()

    result = gallery_image(page, "img2img_gallery")
    assert result.size == original.size == (64, 64)
    changed = ImageChops.difference(result, original).getbbox()
    assert changed is not None, "nothing was inpainted"
    left, top, right, bottom = changed
    # only the band of the horizontal stroke through the middle (brush radius 12) changed; the rest is
    # the input exactly
    assert top >= 32 - 14 and bottom <= 32 + 14, changed
    for corner in ((0, 0), (63, 0), (0, 63), (63, 63)):
        assert result.getpixel(corner) == original.getpixel(corner)
    assert list(app.paths.outputs_dir.glob("img2img-images/*/*.png"))
    page.close()


def test_non_image_upload_is_refused_with_a_message(browser, running_app, tmp_path):
    _, base_url = running_app
    page = browser.new_page()
    open_ui(page, base_url)
    page.locator("#tabs button[role=tab]").filter(has_text=re.compile("^img2img$")).first.click()
    junk = tmp_path / "photo.png"
    junk.write_bytes(b"this is not a picture")
    page.locator("#img2img_image input[type=file]").set_input_files(str(junk))
    playwright.expect(page.get_by_text("Image for img2img: the uploaded file is not an image")).to_be_visible(
        timeout=30_000
    )
    page.locator("#img2img_generate").click()
    playwright.expect(page.get_by_text("No input image: upload one in the img2img tab")).to_be_visible(
        timeout=30_000
    )
    page.close()
