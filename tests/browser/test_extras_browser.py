"""The Extras tab in Chromium: a picture upscaled with a model upscaler (a random-weight file in the real
key layout, written here) to the exact pixels the model makes, saved with its infotext; "📐 Send to
extras" from the txt2img gallery and from PNG Info."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy
import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from tests.browser.helpers import choose, open_ui, playwright, set_number
from tests.conftest import make_app, make_data_dir
from tests.upscaler_files import write_compact
from webui.engine.upscaling.catalog import UpscalerCatalog
from webui.engine.upscaling.runner import TileSettings

pytestmark = pytest.mark.browser
MODEL = "tiny-compact-x2"


@pytest.fixture(scope="module")
def extras_app(tmp_path_factory: pytest.TempPathFactory, tiny_sd1_file: Path) -> Iterator[tuple[Any, str]]:
    from webui.app import serve_in_thread

    data = make_data_dir(tmp_path_factory.mktemp("data"), tiny_sd1_file)
    write_compact(data / "models" / "RealESRGAN" / f"{MODEL}.safetensors", scale=2)
    app = make_app(data)
    app.load_initial_checkpoint()
    server, thread = serve_in_thread(app)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield app, f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
    app.jobs.stop()


def _saved(app: Any) -> list[Path]:
    folder = app.paths.outputs_dir / "extras-images"
    return sorted(folder.glob("*.png")) if folder.exists() else []


def test_single_image_upscaled_with_a_model_upscaler(browser, extras_app, tmp_path):
    app, base_url = extras_app
    rng = numpy.random.default_rng(5)
    picture = Image.fromarray(rng.integers(0, 256, (16, 24, 3), dtype=numpy.uint8))
    info = PngInfo()
    info.add_text("parameters", "a cube\nSteps: 3, Seed: 9")
    source = tmp_path / "source.png"
    picture.save(source, pnginfo=info)
    before = _saved(app)

    page = browser.new_page()
    open_ui(page, base_url)
    page.get_by_role("tab", name="Extras").click()
    page.locator("#extras_image input[type=file]").set_input_files(source)
    playwright.expect(page.locator("#extras_image img")).to_be_visible(timeout=30_000)
    set_number(page, "extras_upscaling_resize", 2)
    choose(page, "extras_upscaler_1", MODEL)
    page.locator("#extras_generate").click()

    text = f"Postprocess upscale by: 2, Postprocess upscaler: {MODEL}"
    playwright.expect(page.locator("#extras_generation_info textarea")).to_have_value(text, timeout=60_000)
    playwright.expect(page.locator("#extras_gallery img").first).to_be_visible()
    saved = [path for path in _saved(app) if path not in before]
    assert len(saved) == 1
    tiles = TileSettings(app.settings.get("ESRGAN_tile"), app.settings.get("ESRGAN_tile_overlap"))
    expected = UpscalerCatalog(app.extras.catalog.folders).upscale(MODEL, picture, 2, tiles)
    with Image.open(saved[0]) as result:
        assert result.size == (48, 32)
        assert result.convert("RGB").tobytes() == expected.tobytes()
        assert result.text["postprocessing"] == text
        assert result.text["parameters"] == "a cube\nSteps: 3, Seed: 9"  # the uploaded file's own text
    page.close()


def test_send_to_extras_from_the_gallery_and_png_info(browser, extras_app):
    app, base_url = extras_app
    page = browser.new_page()
    open_ui(page, base_url)
    page.locator("#txt2img_prompt textarea").fill("a blue square")
    set_number(page, "txt2img_width", 64)
    set_number(page, "txt2img_height", 64)
    set_number(page, "txt2img_steps", 2)
    page.locator("#txt2img_seed input").fill("321")
    page.locator("#txt2img_generate").click()
    infotext = page.locator("#txt2img_infotext textarea")
    playwright.expect(infotext).to_have_value(re.compile("Seed: 321"), timeout=120_000)
    generated = infotext.input_value()

    page.locator("#txt2img_send_to_extras").click()
    playwright.expect(page.locator("#extras_image img")).to_be_visible(timeout=30_000)
    choose(page, "extras_upscaler_1", "Nearest")
    set_number(page, "extras_upscaling_resize", 2)
    before = _saved(app)
    page.locator("#extras_generate").click()
    text = "Postprocess upscale by: 2, Postprocess upscaler: Nearest"
    playwright.expect(page.locator("#extras_generation_info textarea")).to_have_value(text, timeout=60_000)
    saved = [path for path in _saved(app) if path not in before]
    with Image.open(saved[0]) as result:
        assert result.text["parameters"] == generated  # the gallery's file went, infotext and all
        width, height = result.size

    # PNG Info → Send to extras: the file shown there becomes the Extras input.
    page.get_by_role("tab", name="PNG Info").click()
    page.locator("#pnginfo_image input[type=file]").set_input_files(saved[0])
    playwright.expect(page.locator("#pnginfo_generation_info textarea")).to_have_value(
        generated, timeout=30_000
    )
    page.locator("#pnginfo_send_to_extras").click()
    playwright.expect(page.locator("#extras_image img")).to_be_visible(timeout=30_000)
    before = _saved(app)
    page.locator("#extras_generate").click()
    playwright.expect(page.locator("#extras_gallery img").first).to_be_visible(timeout=60_000)
    deadline_saved: list[Path] = []
    for _ in range(100):
        deadline_saved = [path for path in _saved(app) if path not in before]
        if deadline_saved:
            break
        page.wait_for_timeout(100)
    with Image.open(deadline_saved[0]) as again:
        assert again.size == (width * 2, height * 2)
    page.close()
