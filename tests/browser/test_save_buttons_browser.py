"""💾 and 🗃️ under the txt2img gallery in Chromium: the selected image of a batch goes to outputs/save
with its infotext and its log.csv row, and comes back for download (alone, then zipped); 📂 is shown to
this local UI."""

from __future__ import annotations

import csv
import io
import re
import zipfile

import pytest
from PIL import Image

from tests.browser.helpers import open_ui, playwright, set_number
from webui.services.outputs import read_infotext

pytestmark = pytest.mark.browser


def test_save_and_zip_the_selected_image(browser, running_app):
    app, base_url = running_app
    page = browser.new_page()
    open_ui(page, base_url)
    playwright.expect(page.locator("#txt2img_open_folder")).to_be_visible()  # local: offered
    page.locator("#txt2img_prompt textarea").fill("a blue square")
    set_number(page, "txt2img_width", 64)
    set_number(page, "txt2img_height", 64)
    set_number(page, "txt2img_steps", 2)
    set_number(page, "txt2img_batch_size", 2)
    page.locator("#txt2img_seed input").fill("555")
    page.locator("#txt2img_generate").click()
    thumbnails = page.locator("#txt2img_gallery button.thumbnail-item")
    playwright.expect(thumbnails).to_have_count(3, timeout=120_000)  # the grid, then the two images
    thumbnails.nth(2).click()  # the second image: seed 556
    infotext = page.locator("#txt2img_infotext textarea")
    playwright.expect(infotext).to_have_value(re.compile("Seed: 556"))
    expected_text = infotext.input_value()

    save_dir = app.paths.outputs_dir / "save"
    page.locator("#save_txt2img").click()
    links = page.locator("#download_files_txt2img a")
    playwright.expect(links).to_have_count(1, timeout=30_000)
    saved = sorted(save_dir.glob("*.png"))
    assert [path.name for path in saved] == ["00000-556.png"]
    with Image.open(saved[0]) as copy:
        assert read_infotext(copy) == expected_text
        copy_pixels = copy.convert("RGB").tobytes()
    original = next(app.paths.outputs_dir.glob("txt2img-images/*/*-556.png"))
    with Image.open(original) as generated:
        assert generated.convert("RGB").tobytes() == copy_pixels
    with open(save_dir / "log.csv", encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0][:8] == ["prompt", "seed", "width", "height", "sampler", "cfgs", "steps", "filename"]
    assert len(rows) == 2
    assert rows[1][0:4] == ["a blue square", "556", "64", "64"] and rows[1][6:8] == ["2", "00000-556.png"]
    downloaded = page.request.get(links.first.get_attribute("href"))
    assert downloaded.body() == saved[0].read_bytes()

    page.locator("#save_zip_txt2img").click()
    zip_link = page.locator("#download_files_txt2img a[href*='.zip']")
    playwright.expect(zip_link).to_have_count(1, timeout=30_000)
    archive = zipfile.ZipFile(io.BytesIO(page.request.get(zip_link.get_attribute("href")).body()))
    assert archive.namelist() == ["00001-556.png"]  # the selected image again, saved once more
    assert archive.read("00001-556.png") == (save_dir / "00001-556.png").read_bytes()
    page.close()
