"""Issue 21 #2, #11, #12: every image size the server accepts or derives is bounded before pixels are
allocated, with a 4xx naming the size: uploads by their header (a small PNG can declare 10000x10000),
ControlNet's processing size (a 64x1 image at processor_res 2048 would be 2048x131072), upscale factors
(1e308, Infinity)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.security.servers import png_base64, served
from webui.core import image_limits


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, str, Any]]:
    with served(tmp_path_factory.mktemp("bounds"), "--nowebui") as running:
        yield running


def _detect(url: str, image: str, resolution: int) -> requests.Response:
    body = {
        "controlnet_module": "canny",
        "controlnet_input_images": [image],
        "controlnet_processor_res": resolution,
    }
    return requests.post(f"{url}/controlnet/detect", json=body, timeout=60)


def test_a_thin_image_at_a_high_processing_resolution_is_refused_at_once(server):
    _, url, _ = server
    start = time.perf_counter()
    answer = _detect(url, png_base64(64, 1), 2048)
    assert answer.status_code == 422, answer.text
    assert "131072x2048 is too large" in answer.json()["detail"]
    assert time.perf_counter() - start < 5
    # the same image at a size within the bounds works (the limit is not a blanket refusal)
    assert _detect(url, png_base64(64, 8), 64).status_code == 200


def test_an_upload_wider_than_the_bound_is_refused_from_its_header(server):
    _, url, _ = server
    answer = _detect(url, png_base64(100_000, 1, mode="1"), 512)
    assert answer.status_code == 422 and "100000x1 is too large" in answer.json()["detail"]


def test_a_small_file_declaring_a_huge_image_is_refused_before_decoding(server):
    _, url, _ = server
    image = png_base64(10_000, 10_000, mode="1")  # a few kB of PNG, 100 megapixels
    assert len(image) < 100_000
    start = time.perf_counter()
    answer = requests.post(
        f"{url}/sdapi/v1/img2img", json={"prompt": "x", "init_images": [image]}, timeout=60
    )
    assert answer.status_code == 422
    assert "init_images[0]: image 10000x10000 is too large" in answer.json()["detail"]
    assert time.perf_counter() - start < 5


@pytest.mark.parametrize("factor", ["1e308", "Infinity", "1e6"])
def test_extras_upscale_factors_beyond_the_bound_are_a_4xx(server, factor):
    _, url, _ = server
    body = '{"image": "%s", "upscaler_1": "Lanczos", "upscaling_resize": %s}' % (png_base64(8, 8), factor)
    answer = requests.post(
        f"{url}/sdapi/v1/extra-single-image",
        data=body,
        headers={"Content-Type": "application/json"},
        timeout=60,
    )
    assert 400 <= answer.status_code < 500, (factor, answer.status_code, answer.text)


def test_a_controlnet_unit_is_bounded_before_its_job_is_queued(server):
    app, url, _ = server
    unit = {
        "enabled": True,
        "module": "canny",
        "model": "any",
        "image": png_base64(64, 1),
        "processor_res": 2048,
    }
    body = {"prompt": "x", "alwayson_scripts": {"ControlNet": {"args": [unit]}}}
    answer = requests.post(f"{url}/sdapi/v1/txt2img", json=body, timeout=60)
    assert answer.status_code == 422 and "too large" in answer.json()["detail"]
    assert app.jobs.pending() == [] and app.jobs.current() is None


def test_the_bounds_allow_what_the_models_make():
    assert image_limits.check_size(8192, 8192, "a 4x upscale of 2048") == (8192, 8192)
    with pytest.raises(Exception, match="too large"):
        image_limits.check_size(8193, 8192, "one more column")
