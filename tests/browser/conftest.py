"""Debian Chromium driven by playwright (it cannot download its own browser here)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.browser.helpers import CHROMIUM, CHROMIUM_ARGS, playwright


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
