"""Chromium on a real server: issue 20's leftovers (a regression, #15's smaller items, conveniences)."""

from __future__ import annotations

import base64
import io
import re

import pytest
from PIL import Image, PngImagePlugin

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


def inside(inner: dict, outer: dict) -> bool:
    return (
        outer["x"] <= inner["x"]
        and inner["x"] + inner["width"] <= outer["x"] + outer["width"] + 0.5
        and outer["y"] <= inner["y"]
        and inner["y"] + inner["height"] <= outer["y"] + outer["height"] + 0.5
    )


def test_counter_in_the_prompt_box_one_clip_skip_and_whole_size_sliders_at_800_pixels(browser, running_app):
    """Item 15's rest: the token counter inside the prompt box, top right (it was under it); one Clip skip
    slider on the page, which a paste sets (the quicksettings row had a second that kept its value); the
    Width/Height sliders keep their labels and limits whole in an 800 px window."""
    _, base_url = running_app
    page = browser.new_page(viewport={"width": 800, "height": 900})
    open_ui(page, base_url)
    for box_id, counter_id in (("txt2img_prompt", "txt2img_token_counter"),
                               ("txt2img_neg_prompt", "txt2img_negative_token_counter")):  # fmt: skip
        box = page.locator(f"#{box_id}").bounding_box()
        counter = page.locator(f"#{counter_id}").bounding_box()
        assert inside(counter, box), (counter, box)
        assert counter["y"] < box["y"] + box["height"] / 3  # the top of the box
        assert box["x"] + box["width"] - (counter["x"] + counter["width"]) < 40  # its right edge

    assert page.locator("#setting_CLIP_stop_at_last_layers:visible").count() == 0
    prompt = page.locator("#txt2img_prompt textarea")
    prompt.fill("a cat\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 5, Size: 64x64, Clip skip: 2")
    page.locator("#txt2img_paste").click()
    playwright.expect(page.locator("#txt2img_clip_skip input[type=number]")).to_have_value(
        "2", timeout=30_000
    )
    assert page.locator("#setting_CLIP_stop_at_last_layers:visible").count() == 0

    for elem_id in ("txt2img_width", "txt2img_height"):
        block = page.locator(f"#{elem_id}")
        outer = block.bounding_box()
        for part in ("label span", "input[type=number]", ".min_value", ".max_value"):
            shown = block.locator(part).first
            assert inside(shown.bounding_box(), outer), (elem_id, part)
            # and not clipped by its own box ("204" for 2048)
            assert shown.evaluate("el => el.scrollWidth <= el.clientWidth + 1 || el.tagName === 'INPUT'")
        assert block.locator(".max_value").inner_text() == "2048"
    page.close()


def test_xyz_plot_is_captioned_as_a_grid_not_by_a_seed(browser, running_app):
    """Item 15: the X/Y/Z plot came back captioned "Seed 1" in the gallery; it is the plot's grid (its axis
    labels say "Seed: 1", as A1111's)."""
    _, base_url = running_app
    page = browser.new_page()
    open_ui(page, base_url)
    set_number(page, "txt2img_steps", 1)
    set_number(page, "txt2img_width", 64)
    set_number(page, "txt2img_height", 64)
    page.locator("#txt2img_script_list input").click()
    page.locator("#txt2img_script_list [role=option]").filter(has_text="X/Y/Z plot").first.click()
    values = page.locator("#txt2img_xyz_x_values textarea, #txt2img_xyz_x_values input").first
    playwright.expect(values).to_be_visible()
    values.fill("1, 2")
    page.locator("#txt2img_generate").click()
    infotext = page.locator("#txt2img_infotext textarea")
    playwright.expect(infotext).to_have_value(re.compile("Script: X/Y/Z plot"), timeout=120_000)
    gallery = page.locator("#txt2img_gallery")
    playwright.expect(gallery).to_contain_text("Grid")
    assert "Seed 1" not in gallery.inner_text()
    page.close()


def test_prompt_comments_are_stripped_before_generation(browser, running_app):
    """Conveniences: A1111 1.8's # comments (a whole line, or the rest of a line) never reach the model nor
    the token count; the infotext holds the prompt as generated, as A1111's (its Comments script strips
    p.all_prompts, which the infotext is written from)."""
    _, base_url = running_app
    page = browser.new_page()
    open_ui(page, base_url)
    set_number(page, "txt2img_steps", 1)
    set_number(page, "txt2img_width", 64)
    set_number(page, "txt2img_height", 64)
    prompt = page.locator("#txt2img_prompt textarea")
    prompt.fill("a cat # many more words that would count\n# a whole line of notes")
    playwright.expect(page.locator("#txt2img_token_counter")).to_have_text(re.compile(r"^\s*2/75\s*$"))
    prompt.fill("a red circle # not this\n# nor this line\non blue")
    page.locator("#txt2img_generate").click()
    infotext = page.locator("#txt2img_infotext textarea")
    playwright.expect(infotext).to_have_value(re.compile("Steps: 1"), timeout=120_000)
    text = infotext.input_value()
    assert text.startswith("a red circle \non blue\n") and "#" not in text and "not this" not in text
    page.close()


def test_settings_show_all_pages(browser, running_app):
    """Settings: "Show all pages" (A1111's) clears the search and unfolds every section again."""
    _, base_url = running_app
    page = browser.new_page()
    open_ui(page, base_url)
    page.get_by_role("tab", name="Settings").click()
    page.locator("#settings_stable_diffusion .label-wrap").first.click()  # fold a section
    playwright.expect(page.locator("#setting_CLIP_stop_at_last_layers")).to_be_hidden()
    search = page.locator("#settings_search textarea, #settings_search input").first
    search.fill("jpeg quality")
    playwright.expect(page.locator("#setting_samples_save")).to_be_hidden()
    page.locator("#settings_show_all_pages").click()
    playwright.expect(search).to_have_value("")
    for setting in ("samples_save", "jpeg_quality", "CLIP_stop_at_last_layers"):
        playwright.expect(page.locator(f"#setting_{setting}")).to_be_visible()
    page.close()


DROP = """async ([selector, name, type, data, text]) => {
    const transfer = new DataTransfer();
    if (data) {
        const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
        transfer.items.add(new File([bytes], name, { type }));
    } else {
        transfer.setData("text/plain", text);
    }
    const target = document.querySelector(selector);
    const options = { dataTransfer: transfer, bubbles: true, cancelable: true };
    target.dispatchEvent(new DragEvent("dragover", options));
    target.dispatchEvent(new DragEvent("drop", options));
}"""


def test_image_or_infotext_dropped_on_the_prompt_pastes_its_parameters(browser, running_app):
    """Conveniences: a PNG made here (its "parameters" text) or an infotext dropped on the prompt box sets
    the tab's parameters, as ↙ does with the text."""
    _, base_url = running_app
    info = PngImagePlugin.PngInfo()
    infotext = "a dropped cat\nSteps: 7, Sampler: Euler a, CFG scale: 5, Seed: 123, Size: 64x96"
    info.add_text("parameters", infotext)
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(buffer, "PNG", pnginfo=info)
    picture = base64.b64encode(buffer.getvalue()).decode()
    page = browser.new_page()
    open_ui(page, base_url)
    prompt = "#txt2img_prompt textarea"
    page.evaluate(DROP, [prompt, "cat.png", "image/png", picture, ""])
    playwright.expect(page.locator(prompt)).to_have_value("a dropped cat", timeout=30_000)
    playwright.expect(page.locator("#txt2img_steps input[type=number]")).to_have_value("7")
    playwright.expect(page.locator("#txt2img_seed input")).to_have_value("123")
    playwright.expect(page.locator("#txt2img_height input[type=number]")).to_have_value("96")

    page.evaluate(DROP, [prompt, "", "", "", "a dog\nSteps: 9, Sampler: Euler, CFG scale: 6, Seed: 77"])
    playwright.expect(page.locator(prompt)).to_have_value("a dog", timeout=30_000)
    playwright.expect(page.locator("#txt2img_steps input[type=number]")).to_have_value("9")
    playwright.expect(page.locator("#txt2img_seed input")).to_have_value("77")
    page.close()


RECORD_NOTIFICATIONS = """
    window.shownNotifications = [];
    const Real = window.Notification;
    window.Notification = class extends Real {
        constructor(title, options) {
            super(title, options);
            window.shownNotifications.push([title, options?.body]);
        }
    };
    document.hasFocus = () => false;  // the page is in the background
"""


def test_desktop_notification_when_a_run_ends_only_with_the_setting(browser, running_app):
    """Conveniences: with "browser_notifications" on (off by default) a run that ends while the page is
    in the background shows a desktop notification."""
    app, base_url = running_app
    context = browser.new_context(permissions=["notifications"])
    page = context.new_page()
    page.add_init_script(RECORD_NOTIFICATIONS)
    open_ui(page, base_url)
    set_number(page, "txt2img_steps", 1)
    set_number(page, "txt2img_width", 64)
    set_number(page, "txt2img_height", 64)
    infotext = page.locator("#txt2img_infotext textarea")

    def generate(seed: int) -> None:
        set_number(page, "txt2img_seed", seed)
        page.locator("#txt2img_generate").click()
        playwright.expect(infotext).to_have_value(re.compile(f"Seed: {seed}"), timeout=120_000)
        page.wait_for_timeout(1500)  # the page looks every half second

    assert app.settings.get("browser_notifications") is False
    generate(11)
    assert page.evaluate("window.shownNotifications") == []
    try:
        page.get_by_role("tab", name="Settings").click()
        page.locator("#setting_browser_notifications input[type=checkbox]").check()
        page.locator("#settings_submit").click()
        playwright.expect(page.locator("#settings_result")).to_contain_text("1 settings changed")
        page.get_by_role("tab", name="txt2img").click()
        generate(12)
        assert page.evaluate("window.shownNotifications") == [["Stable Diffusion", "Generation finished"]]
    finally:
        app.settings.update({"browser_notifications": False})
    context.close()


def test_gallery_preview_is_a_lightbox_with_arrow_keys_and_full_screen(browser, running_app):
    """Conveniences: gradio's gallery preview gives most of A1111's lightbox: ←/→ go through the images
    (the infotext follows) and a full-screen button; no zoom of its own."""
    _, base_url = running_app
    page = browser.new_page()
    open_ui(page, base_url)
    set_number(page, "txt2img_steps", 1)
    set_number(page, "txt2img_width", 64)
    set_number(page, "txt2img_height", 64)
    set_number(page, "txt2img_batch_size", 2)
    page.locator("#txt2img_generate").click()
    gallery = page.locator("#txt2img_gallery")
    thumbnails = gallery.locator("button.thumbnail-item")
    infotext = page.locator("#txt2img_infotext textarea")
    # the infotext comes with the final gallery (while the job runs, finished images and a preview show)
    playwright.expect(infotext).to_have_value(re.compile("Seed: "), timeout=120_000)
    playwright.expect(thumbnails).to_have_count(3, timeout=30_000)  # the batch grid and two images
    thumbnails.nth(1).click()  # the first image (after the grid): its infotext shows
    first_seed = int(re.search(r"Seed: (\d+)", infotext.input_value())[1])
    preview = gallery.locator(".preview").first
    preview.press("ArrowRight")
    playwright.expect(infotext).to_have_value(re.compile(f"Seed: {first_seed + 1},"))
    preview.press("ArrowLeft")
    playwright.expect(infotext).to_have_value(re.compile(f"Seed: {first_seed},"))
    # its full-screen button (headless Chromium does not enter full screen, so only its presence is checked)
    full_screen = gallery.get_by_role("button", name=re.compile("full ?screen", re.I)).first
    playwright.expect(full_screen).to_be_visible()
    page.close()
