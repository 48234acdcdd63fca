"""Chromium on a real server: what broke or confused a new A1111 user (issue 20, "Broken today")."""

from __future__ import annotations

import logging
import re
import warnings

import pytest
from PIL import Image

from tests.browser.helpers import open_ui, playwright, set_number

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


def test_generate_gives_way_to_interrupt_with_one_progress_display(browser, running_app):
    """Items 4, 5, 7, 10: while a job runs Generate is replaced by Interrupt/Skip (a click is never
    dropped); one progress display, "ETA 1m 05s" style and never "step 0/0"; Interrupt says so, the
    page is ready again, and the handler no longer returns a value gradio warns about."""
    _, base_url = running_app
    page = browser.new_page()
    open_ui(page, base_url)
    generate, interrupt = page.locator("#txt2img_generate"), page.locator("#txt2img_interrupt")
    playwright.expect(interrupt).to_be_hidden()
    set_number(page, "txt2img_width", 64)
    set_number(page, "txt2img_height", 64)
    set_number(page, "txt2img_steps", 150)
    set_number(page, "txt2img_batch_count", 3)
    generate.click()
    playwright.expect(generate).to_be_hidden(timeout=10_000)
    playwright.expect(interrupt).to_be_visible()
    playwright.expect(page.locator("#txt2img_skip")).to_be_visible()
    progress = page.locator("#txt2img_progress")
    line = re.compile(r"Batch 1/3 · step \d+/150 · \d+% · \d+s elapsed · ETA (\d+h \d\dm|\d+m \d\ds|\d+s)")
    playwright.expect(progress).to_contain_text(line, timeout=60_000)
    assert "0/0" not in progress.inner_text()
    playwright.expect(page).to_have_title(re.compile(r"^\[\d+%\] Stable Diffusion$"))  # title progress
    # gradio's own bar (on the gallery and on the infotext) is not shown beside ours
    assert page.locator(".progress-level:visible, .eta-bar:visible").count() == 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        interrupt.click()
        playwright.expect(progress).to_have_text("Interrupted", timeout=60_000)
        playwright.expect(page.get_by_text("Interrupted").last).to_be_visible()
        playwright.expect(generate).to_be_visible()
        playwright.expect(interrupt).to_be_hidden()
    playwright.expect(page).to_have_title("Stable Diffusion")
    assert not [w for w in caught if "too many output values" in str(w.message)]
    page.close()


def test_out_of_range_numbers_are_set_to_the_limit_with_a_notice(browser, running_app):
    """Item 9: typed numbers outside a slider's limits are changed visibly, and typing never makes the
    server answer 500 (the token counter used to fail on steps 0)."""
    _, base_url = running_app
    page = browser.new_page()
    failures: list[str] = []
    page.on("response", lambda r: failures.append(r.url) if r.status >= 500 else None)
    open_ui(page, base_url)
    width = page.locator("#txt2img_width input[type=number]")
    width.fill("100000")
    width.press("Enter")
    notices = page.locator("#webui_notices")
    playwright.expect(notices).to_contain_text("Width: 100000 is above the maximum 2048; set to 2048.")
    playwright.expect(width).to_have_value("2048")
    steps = page.locator("#txt2img_steps input[type=number]")
    steps.fill("0")
    page.locator("#txt2img_prompt textarea").fill("a cat")  # the counter counts with the steps shown
    counter = page.locator("#txt2img_token_counter")
    playwright.expect(counter).to_have_text(re.compile(r"^\s*2/75\s*$"), timeout=30_000)
    steps.press("Tab")
    playwright.expect(notices).to_contain_text("Sampling steps: 0 is below the minimum 1; set to 1.")
    playwright.expect(steps).to_have_value("1")
    steps.fill("12")  # values in range are untouched
    steps.press("Enter")
    playwright.expect(steps).to_have_value("12")
    assert failures == []
    page.close()


def test_non_image_files_get_a_friendly_message_gallery_is_output_only(browser, running_app, tmp_path):
    """Items 8 and 12: PNG Info and the inpaint editor refuse a text file with img2img's message (no
    gradio internals, no uncaught browser error); the output gallery is no upload box."""
    _, base_url = running_app
    text_file = tmp_path / "notes.txt"
    text_file.write_text("not a picture")
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    open_ui(page, base_url)
    gallery = page.locator("#txt2img_gallery")
    playwright.expect(gallery).to_be_visible()
    assert "Drop Media Here" not in gallery.inner_text()
    assert gallery.locator("input[type=file]").count() == 0

    page.get_by_role("tab", name="PNG Info").click()
    page.locator("#pnginfo_image input[type=file]").set_input_files(str(text_file))
    notices = page.locator("#webui_notices")
    playwright.expect(notices).to_contain_text("Source: the uploaded file is not an image", timeout=30_000)
    assert "/tmp/" not in page.locator("body").inner_text()

    page.get_by_role("tab", name="img2img", exact=True).click()
    page.get_by_role("tab", name="Inpaint", exact=True).click()
    page.locator("#img2maskimg input[type=file]").first.set_input_files(str(text_file))
    playwright.expect(notices).to_contain_text("mask: the uploaded file is not an image", timeout=30_000)
    page.wait_for_timeout(1000)
    assert errors == []
    page.close()


def test_user_error_is_a_toast_and_one_log_line_without_traceback(browser, running_app, capfd, caplog):
    """Item 10: an ordinary mistake (img2img without an image) gets its toast, and the server log one
    INFO line instead of a traceback."""
    _, base_url = running_app
    page = browser.new_page()
    open_ui(page, base_url)
    page.get_by_role("tab", name="img2img", exact=True).click()
    capfd.readouterr()
    with caplog.at_level(logging.INFO, logger="webui.ui"):
        page.locator("#img2img_generate").click()
        toast = page.get_by_text("No input image: upload one in the img2img tab").first
        playwright.expect(toast).to_be_visible(timeout=30_000)
        playwright.expect(page.locator("#img2img_generate")).to_be_visible(timeout=30_000)
    assert "Traceback" not in capfd.readouterr().err
    lines = [r for r in caplog.records if r.name == "webui.ui" and "img2img" in r.getMessage()]
    assert len(lines) == 1 and lines[0].levelno == logging.INFO and lines[0].exc_info is None
    page.close()


def test_api_docs_render_without_internet(browser, running_app):
    """Item 13: /docs (Swagger UI) and /redoc load their files from this server, not from a CDN."""
    _, base_url = running_app
    page = browser.new_page()
    elsewhere: list[tuple[str, str]] = []

    def only_local(route) -> None:
        if route.request.url.startswith(base_url):
            route.continue_()
        else:
            elsewhere.append((route.request.resource_type, route.request.url))
            route.abort()

    page.route("**/*", only_local)
    page.goto(f"{base_url}/docs")
    playwright.expect(page.locator(".swagger-ui .info .title")).to_contain_text("webui", timeout=30_000)
    playwright.expect(page.get_by_text("/sdapi/v1/txt2img").first).to_be_visible()
    page.goto(f"{base_url}/redoc")
    playwright.expect(page.get_by_role("heading", name="webui").first).to_be_visible(timeout=30_000)
    # Redoc's own "powered by" logo image is the one thing it still asks a CDN for (it shows without it)
    assert [url for kind, url in elsewhere if kind != "image"] == []
    page.close()


def test_smaller_items_at_800_pixels(browser, running_app):
    """Item 15 (part): Extensions table headers stay whole at 800 px ("URL", not "U R L"), the CFG
    Rescale hint says what it does, and no element id is used twice."""
    _, base_url = running_app
    page = browser.new_page(viewport={"width": 800, "height": 900})
    open_ui(page, base_url)
    hint = page.locator("#txt2img_cfg_rescale")
    playwright.expect(hint).to_contain_text("Keeps colours from washing out at high CFG")
    # at 800 px every page tab fits the tab bar (no "More tabs" menu; test_accordions_browser checks it)
    page.get_by_role("tab", name="Extensions").click()
    headers = page.locator("#extensions_table th")
    playwright.expect(headers.first).to_be_visible(timeout=30_000)
    line_height = page.locator("#extensions_table td").first.evaluate(
        "el => parseFloat(getComputedStyle(el).lineHeight) || 20"
    )
    for header in headers.all():
        text = header.inner_text().strip()
        assert "\n" not in text, text
        box = header.locator("span, div").first
        assert box.bounding_box()["height"] <= 2 * line_height, text
    twice = page.evaluate(
        """() => { const seen = {}; for (const el of document.querySelectorAll('[id]'))
            if (el.id) seen[el.id] = (seen[el.id] || 0) + 1;
            return Object.keys(seen).filter(id => seen[id] > 1); }"""
    )
    assert twice == []
    page.close()
