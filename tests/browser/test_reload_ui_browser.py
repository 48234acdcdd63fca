"""Settings → "Reload UI" (issue 20): a checkpoint copied into the models folder after the page was built
is listed once the button has re-read the folders and reloaded the page."""

from __future__ import annotations

import shutil

import pytest

from tests.browser.helpers import open_ui, playwright

pytestmark = pytest.mark.browser


def test_reload_ui_lists_a_checkpoint_added_to_the_models_folder(browser, running_app, tiny_sd1_file):
    app, base_url = running_app
    page = browser.new_page()
    open_ui(page, base_url)
    added = app.paths.ckpt_dir / "added-after-start.safetensors"
    shutil.copy(tiny_sd1_file, added)
    try:
        page.get_by_role("tab", name="Settings", exact=True).click()
        button = page.locator("#settings_restart_gradio")
        button.scroll_into_view_if_needed()
        assert "restart the server" in page.locator("#settings_restart_gradio_note").inner_text()
        page.evaluate("window.beforeReloadUi = true")  # gone once the page has really been reloaded
        with page.expect_navigation(timeout=60_000):
            button.click()
        page.locator("#txt2img_generate").wait_for(timeout=60_000)
        assert page.evaluate("window.beforeReloadUi") is None
        page.locator("#setting_sd_model_checkpoint input").click()
        options = page.locator("#setting_sd_model_checkpoint [role=option]")
        option = options.filter(has_text="added-after-start")
        playwright.expect(option.first).to_be_visible(timeout=30_000)
    finally:
        added.unlink()
        page.close()
