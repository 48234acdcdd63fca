"""The start-up checkpoint's status line in Chromium (issue 24): "Loading model …" while it loads in the
background, gone once it is in (the checkpoint dropdown then names it), or why it failed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.api.test_startup_load import broken_checkpoint, hold_loading, serve_loading_in_background
from tests.browser.helpers import choose, open_ui, playwright
from tests.conftest import make_app, make_data_dir

pytestmark = pytest.mark.browser


def test_status_line_follows_the_background_load(
    browser, tmp_path: Path, tiny_sd1_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(make_data_dir(tmp_path, tiny_sd1_file))
    loading, release = hold_loading(app, monkeypatch)
    with serve_loading_in_background(app) as url:
        assert loading.wait(60)
        page = browser.new_page()
        open_ui(page, url)  # the page is usable while the model loads
        status = page.locator("#model_status")
        playwright.expect(status).to_contain_text("Loading model tiny-sd1.safetensors", timeout=30_000)
        release.set()
        playwright.expect(status).to_be_hidden(timeout=60_000)
        checkpoint = page.locator("#setting_sd_model_checkpoint input")
        playwright.expect(checkpoint).to_have_value(re.compile("tiny-sd1"), timeout=30_000)
        page.close()


def test_status_line_says_why_the_checkpoint_did_not_load_until_another_one_loads(
    browser, tmp_path: Path, tiny_sd1_file: Path
) -> None:
    app = make_app(make_data_dir(tmp_path / "data", broken_checkpoint(tmp_path), tiny_sd1_file))
    assert app.models.initial_checkpoint(None).endswith("broken.safetensors")  # the first one found
    with serve_loading_in_background(app) as url:
        page = browser.new_page()
        open_ui(page, url)
        status = page.locator("#model_status")
        playwright.expect(status).to_contain_text(
            "Could not load the model broken.safetensors", timeout=60_000
        )
        playwright.expect(status).to_contain_text("unknown architecture")
        choose(page, "setting_sd_model_checkpoint", "tiny-sd1")
        playwright.expect(status).to_be_hidden(timeout=60_000)
        assert app.models.current_title().startswith("tiny-sd1")
        page.close()
