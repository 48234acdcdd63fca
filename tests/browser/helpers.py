"""Shared by the browser tests: the Chromium fixture lives in conftest.py, these are page helpers."""

from __future__ import annotations

import pytest

playwright = pytest.importorskip("playwright.sync_api", reason="playwright is installed by tools/run_tests.py")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def open_ui(page, base_url: str) -> None:
    page.goto(base_url)
    page.locator("#txt2img_generate").wait_for(timeout=60_000)


def set_number(page, elem_id: str, value: int) -> None:
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Enter")
