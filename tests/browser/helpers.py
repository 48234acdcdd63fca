"""Shared by the browser tests: the Chromium fixture lives in conftest.py, these are page helpers."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

playwright = pytest.importorskip(
    "playwright.sync_api", reason="playwright is installed by tools/run_tests.py"
)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def wait_until(condition: Callable[[], object], what: str, timeout_s: float) -> None:
    """Poll `condition` (server-side state: the job queue, a page's localStorage) until it is true."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def open_ui(page, base_url: str) -> None:
    page.goto(base_url)
    page.locator("#txt2img_generate").wait_for(timeout=60_000)


def set_number(page, elem_id: str, value: int) -> None:
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Enter")


def choose(page, elem_id: str, option: str, timeout_s: float = 30) -> None:
    """Pick `option` in a gradio dropdown. The choices may still be arriving (a 🔄 refresh that has not
    come back yet, a slow machine), so open, filter and look again until the option shows."""
    box = page.locator(f"#{elem_id} input")
    item = page.locator(f"#{elem_id} [role=option]").filter(has_text=option).first
    deadline = time.monotonic() + timeout_s
    while True:
        box.click()
        box.fill(option)
        try:
            item.click(timeout=2_000)
            return
        except playwright.TimeoutError:
            if time.monotonic() > deadline:
                raise
            page.keyboard.press("Escape")
