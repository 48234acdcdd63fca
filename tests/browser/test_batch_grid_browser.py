"""A batch in Chromium shows A1111's grid first in the gallery; the Tiling checkbox is on the page."""

from __future__ import annotations

import re

import pytest

from tests.browser.helpers import open_ui, playwright, set_number

pytestmark = pytest.mark.browser


def test_a_batch_shows_its_grid_first(browser, running_app):
    app, base_url = running_app
    page = browser.new_page()
    open_ui(page, base_url)
    assert page.locator("#txt2img_tiling input[type=checkbox]").count() == 1
    page.locator("#txt2img_prompt textarea").fill("a red circle")
    set_number(page, "txt2img_width", 64)
    set_number(page, "txt2img_height", 64)
    set_number(page, "txt2img_steps", 2)
    set_number(page, "txt2img_batch_size", 2)
    page.locator("#txt2img_seed input").fill("321")
    page.locator("#txt2img_generate").click()
    infotext = page.locator("#txt2img_infotext textarea")
    playwright.expect(infotext).to_have_value(re.compile("Seed: 321"), timeout=120_000)
    pictures = page.locator("#txt2img_gallery img")
    playwright.expect(pictures.first).to_be_visible()
    widths = pictures.evaluate_all(
        "imgs => Promise.all(imgs.map(i => i.decode().then(() => [i.naturalWidth, i.naturalHeight])))"
    )
    assert widths[0] == [128, 64]  # two 64-px images side by side, shown first
    assert [64, 64] in widths[1:]
    assert page.locator("#txt2img_gallery").get_by_text("Grid").count() >= 1
    grids = list(app.paths.outputs_dir.glob("txt2img-grids/*/*.png"))
    assert len(grids) == 1
    page.close()
