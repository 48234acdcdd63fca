"""The ControlNet accordion in Chromium: a unit previews its map (💥), is enabled, and the image follows."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw

from tests.browser.helpers import choose, open_ui, playwright, set_number
from tests.conftest import make_app, make_data_dir
from tools.tiny_controlnet import save_tiny_controlnet
from tools.tiny_models import tiny_pipeline

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, tiny_sd1_file: Path) -> Iterator[tuple[Any, str, Path]]:
    from webui.app import serve_in_thread

    root = tmp_path_factory.mktemp("controlnet-ui")
    data = make_data_dir(root / "data", tiny_sd1_file)
    save_tiny_controlnet(data / "models" / "ControlNet" / "tiny-cn.safetensors", tiny_pipeline("sd1"), seed=1)
    image = Image.new("RGB", (64, 64), "white")
    ImageDraw.Draw(image).ellipse((12, 12, 52, 52), fill="black")
    image.save(root / "disc.png")
    app = make_app(data)
    app.load_initial_checkpoint()
    server, thread = serve_in_thread(app)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield app, f"http://127.0.0.1:{port}", root / "disc.png"
    server.should_exit = True
    thread.join(10)
    app.jobs.stop()


def test_unit_preview_and_generation(browser: Any, server: tuple[Any, str, Path]) -> None:
    app, url, disc = server
    page = browser.new_page()
    open_ui(page, url)
    set_number(page, "txt2img_width", 64)
    set_number(page, "txt2img_height", 64)
    set_number(page, "txt2img_steps", 2)
    page.locator("#txt2img_controlnet").get_by_text("ControlNet", exact=True).first.click()
    unit = "txt2img_controlnet_unit_0"
    page.locator(f"#{unit}_image input[type=file]").set_input_files(str(disc))
    choose(page, f"{unit}_module", "canny")
    playwright.expect(page.locator(f"#{unit}_threshold_a")).to_contain_text("Canny Low Threshold")
    page.locator(f"#{unit}_run_preview").click()
    playwright.expect(page.locator(f"#{unit}_preview img")).to_be_visible(timeout=60_000)
    page.locator(f"#{unit}_enable input").check()
    choose(page, f"{unit}_model", app.manager.controlnets.find("tiny-cn").title())
    page.locator("#txt2img_generate").click()
    infotext = page.locator("#txt2img_infotext textarea")
    pattern = re.compile(r'ControlNet 0: "Module: canny, Model: tiny-cn \[\w+\], Weight: 1.0,')
    playwright.expect(infotext).to_have_value(pattern, timeout=120_000)
    page.close()
