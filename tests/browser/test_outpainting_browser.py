"""The two outpainting scripts in a real browser: both in the img2img Script dropdown (not in txt2img's),
and choosing one shows its controls (built by the generic scripts section, as every script's are)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.helpers import open_ui, playwright
from tests.conftest import make_app, make_data_dir

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, tiny_sd1_file: Path) -> Iterator[str]:
    from webui.app import serve_in_thread

    app = make_app(make_data_dir(tmp_path_factory.mktemp("browser-outpainting"), tiny_sd1_file))
    app.load_initial_checkpoint()
    server, thread = serve_in_thread(app)
    yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    server.should_exit = True
    thread.join(10)
    app.jobs.stop()


def _options(page: Any, elem_id: str) -> list[str]:
    page.locator(f"#{elem_id} input").click()
    options = page.locator(f"#{elem_id} [role=option]")
    options.first.wait_for()
    texts = [text.strip() for text in options.all_inner_texts()]
    page.keyboard.press("Escape")
    page.locator(f"#{elem_id} input").blur()  # the list opens on focus: let the next click focus again
    return texts


def _choose(page: Any, elem_id: str, title: str) -> None:
    page.locator(f"#{elem_id} input").click()
    page.locator(f"#{elem_id} [role=option]").filter(has_text=title).first.click()


def test_outpainting_scripts_in_the_img2img_dropdown_with_their_controls(browser, served):
    page = browser.new_page()
    open_ui(page, served)
    assert "Outpainting mk2" not in _options(page, "txt2img_script_list")
    page.get_by_role("tab", name="img2img").first.click()
    assert {"Outpainting mk2", "Poor man's outpainting"} <= set(_options(page, "img2img_script_list"))

    _choose(page, "img2img_script_list", "Outpainting mk2")
    prefix = "#img2img_script_outpainting_mk2"
    for name, label in (
        ("pixels", "Pixels to expand"), ("mask_blur", "Mask blur"), ("direction", "Outpainting direction"),
        ("noise_q", "Fall-off exponent (lower=higher detail)"), ("color_variation", "Color variation"),
    ):  # fmt: skip
        playwright.expect(page.locator(f"{prefix}_{name}")).to_be_visible()
        playwright.expect(page.locator(f"{prefix}_{name}")).to_contain_text(label)
    playwright.expect(page.locator(f"{prefix}_direction input[type=checkbox]")).to_have_count(4)
    playwright.expect(page.get_by_text("Recommended settings: Sampling Steps: 80-100")).to_be_visible()

    _choose(page, "img2img_script_list", "Poor man's outpainting")
    playwright.expect(page.locator(f"{prefix}_pixels")).to_be_hidden()
    fill = page.locator("#img2img_script_poor_mans_outpainting_inpainting_fill")
    playwright.expect(fill).to_be_visible()
    for choice in ("fill", "original", "latent noise", "latent nothing"):
        playwright.expect(fill.get_by_label(choice, exact=True)).to_be_visible()
    page.close()
