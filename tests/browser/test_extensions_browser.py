"""Extensions in a real browser: the example extension's tab, script and page assets, and a run of the
built-in X/Y/Z plot from the Script dropdown."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.helpers import open_ui, playwright, set_number
from tests.conftest import make_app, make_data_dir
from tests.plugins.conftest import add_example

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def extension_app(tmp_path_factory: pytest.TempPathFactory, tiny_sd1_file: Path) -> Iterator[tuple[Any, str]]:
    from webui.app import serve_in_thread

    root = make_data_dir(tmp_path_factory.mktemp("browser-extensions"), tiny_sd1_file)
    add_example(root)
    app = make_app(root)
    app.load_initial_checkpoint()
    server, thread = serve_in_thread(app)
    yield app, f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    server.should_exit = True
    thread.join(10)
    app.jobs.stop()


def text_input(page: Any, elem_id: str) -> Any:
    return page.locator(f"#{elem_id} textarea, #{elem_id} input").first


def test_example_tab_and_xyz_plot_from_the_script_dropdown(browser, extension_app):
    app, base_url = extension_app
    page = browser.new_page()
    open_ui(page, base_url)
    # the extension's javascript/*.js ran in the page
    assert page.evaluate("document.body.dataset.exampleWatermark") == "loaded"

    # its tab (on_ui_tabs) is on the page and works
    page.get_by_role("tab", name="Watermark").click()
    text_input(page, "watermark_tab_text").fill("hello tab")
    page.locator("#watermark_tab_stamp").click()
    playwright.expect(page.locator("#watermark_tab_result img")).to_be_visible(timeout=30_000)
    page.get_by_role("tab", name="Extensions").click()
    playwright.expect(page.locator("#extensions_table")).to_contain_text("example-watermark")

    # the built-in X/Y/Z plot, chosen from the Script dropdown, with the watermark switched on
    page.get_by_role("tab", name="txt2img").click()
    set_number(page, "txt2img_steps", 1)
    set_number(page, "txt2img_width", 64)
    set_number(page, "txt2img_height", 64)
    dropdown = page.locator("#txt2img_script_list input")
    dropdown.click()
    page.locator("#txt2img_script_list [role=option]").filter(has_text="X/Y/Z plot").first.click()
    values = text_input(page, "txt2img_xyz_x_values")
    playwright.expect(values).to_be_visible()
    values.fill("1, 2")
    page.locator("#txt2img_script_watermark").get_by_text("Watermark").first.click()  # open the accordion
    page.locator("#txt2img_watermark_enabled input").check()
    page.locator("#txt2img_generate").click()

    infotext = page.locator("#txt2img_infotext textarea")
    playwright.expect(infotext).to_have_value(re.compile("Script: X/Y/Z plot"), timeout=90_000)
    text = infotext.input_value()
    assert 'X Type: Seed, X Values: "1, 2"' in text and "Watermark: made with webui" in text
    grids = list(app.paths.outputs_dir.glob("txt2img-grids/*/*.png"))
    assert len(grids) == 1 and len(list(app.paths.outputs_dir.glob("txt2img-images/*/*.png"))) == 2
    page.close()
