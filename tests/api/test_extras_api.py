"""The Extras and upscaler routes on a real server, with a random-weight model upscaler file in the data
folder: model upscalers listed with their path and scale, used by extra-single-image and
extra-batch-images (queued), saved with A1111's infotext when asked, corrupt files refused."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy
import pytest
import requests
from PIL import Image

from tests.conftest import make_app, make_data_dir
from tests.upscaler_files import write_compact
from webui.engine.upscaling.catalog import UpscalerCatalog
from webui.engine.upscaling.runner import TileSettings

MODEL = "tiny-compact-x2"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, str]]:
    from webui.app import serve_in_thread

    data = make_data_dir(tmp_path_factory.mktemp("data"))
    write_compact(data / "models" / "RealESRGAN" / f"{MODEL}.safetensors", scale=2)
    (data / "models" / "ESRGAN").mkdir(parents=True)
    (data / "models" / "ESRGAN" / "broken.pth").write_bytes(b"not a model at all")
    app = make_app(data, "--api")
    http, thread = serve_in_thread(app)
    port = http.servers[0].sockets[0].getsockname()[1]
    yield app, f"http://127.0.0.1:{port}/sdapi/v1"
    http.should_exit = True
    thread.join(10)
    app.jobs.stop()


def _image(width: int = 24, height: int = 16, seed: int = 0) -> Image.Image:
    rng = numpy.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=numpy.uint8))


def _b64(image: Image.Image, text: str | None = None) -> str:
    buffer = io.BytesIO()
    if text is None:
        image.save(buffer, format="PNG")
    else:
        from PIL.PngImagePlugin import PngInfo

        info = PngInfo()
        info.add_text("parameters", text)
        image.save(buffer, format="PNG", pnginfo=info)
    return base64.b64encode(buffer.getvalue()).decode()


def _decode(text: str) -> Image.Image:
    image = Image.open(io.BytesIO(base64.b64decode(text)))
    image.load()
    return image


def _expected(app: Any, image: Image.Image, scale: float) -> Image.Image:
    """The model's own output through a separate catalog, with the app's tile options."""
    catalog = UpscalerCatalog(app.extras.catalog.folders)
    tiles = TileSettings(app.settings.get("ESRGAN_tile"), app.settings.get("ESRGAN_tile_overlap"))
    return catalog.upscale(MODEL, image, scale, tiles)


def test_upscaler_listings(server: tuple[Any, str]) -> None:
    app, url = server
    items = requests.get(f"{url}/upscalers", timeout=30).json()
    assert [item["name"] for item in items] == ["None", "Lanczos", "Nearest", MODEL]
    model = items[-1]
    assert model["scale"] == 2 and Path(model["model_path"]).name == f"{MODEL}.safetensors"
    assert model["model_name"]  # spandrel's architecture name
    realesrgan = requests.get(f"{url}/realesrgan-models", timeout=30).json()
    assert [(m["name"], m["scale"]) for m in realesrgan] == [(MODEL, 2)]
    modes = [m["name"] for m in requests.get(f"{url}/latent-upscale-modes", timeout=30).json()]
    assert modes[0] == "Latent" and "Latent (nearest-exact)" in modes and len(modes) == 6
    # The corrupt file is refused with a reason; the app kept serving the others.
    refused = app.extras.catalog.refused()
    assert [path.name for path in refused] == ["broken.pth"]


def test_single_image_with_a_model_upscaler(server: tuple[Any, str]) -> None:
    app, url = server
    image = _image()
    body = {"image": _b64(image, "a cube\nSteps: 3, Seed: 5"), "upscaler_1": MODEL, "upscaling_resize": 2}
    answer = requests.post(f"{url}/extra-single-image", json=body, timeout=120)
    assert answer.status_code == 200, answer.text
    result = _decode(answer.json()["image"])
    assert result.size == (48, 32)
    assert result.tobytes() == _expected(app, image, 2).tobytes()
    assert result.tobytes() != image.resize((48, 32), Image.Resampling.LANCZOS).tobytes()
    text = f"Postprocess upscale by: 2, Postprocess upscaler: {MODEL}"
    assert result.info["postprocessing"] == text and text in answer.json()["html_info"]
    assert result.info["parameters"] == "a cube\nSteps: 3, Seed: 5"  # the input's infotext goes on


def test_second_upscaler_is_blended_in(server: tuple[Any, str]) -> None:
    app, url = server
    image = _image(seed=1)
    body = {
        "image": _b64(image),
        "upscaler_1": "Lanczos",
        "upscaler_2": MODEL,
        "extras_upscaler_2_visibility": 0.25,
        "resize_mode": 1,
        "upscaling_resize_w": 48,
        "upscaling_resize_h": 32,
    }
    answer = requests.post(f"{url}/extra-single-image", json=body, timeout=120)
    assert answer.status_code == 200, answer.text
    result = _decode(answer.json()["image"])
    first = image.resize((48, 32), Image.Resampling.LANCZOS)
    assert result.tobytes() == Image.blend(first, _expected(app, image, 2), 0.25).tobytes()
    assert f"Postprocess upscaler 2: {MODEL}" in result.info["postprocessing"]


def test_batch_images_are_saved_under_their_names_when_asked(server: tuple[Any, str]) -> None:
    app, url = server
    images = [_image(16, 16, seed) for seed in (2, 3)]
    body = {
        "imageList": [{"data": _b64(img), "name": f"photo{i}.png"} for i, img in enumerate(images)],
        "upscaler_1": MODEL,
        "upscaling_resize": 3,
        "save_images": True,
    }
    answer = requests.post(f"{url}/extra-batch-images", json=body, timeout=120)
    assert answer.status_code == 200, answer.text
    results = [_decode(text) for text in answer.json()["images"]]
    assert [r.size for r in results] == [(48, 48), (48, 48)]
    assert results[1].tobytes() == _expected(app, images[1], 3).tobytes()
    folder = app.paths.data_dir / "outputs" / "extras-images"
    saved = sorted(path.name for path in folder.iterdir())
    assert saved == ["photo0.png", "photo1.png"]
    with Image.open(folder / "photo1.png") as stored:
        assert stored.text["postprocessing"] == f"Postprocess upscale by: 3, Postprocess upscaler: {MODEL}"
        assert stored.text["extras"] == stored.text["postprocessing"]
        assert stored.tobytes() == results[1].tobytes()


def test_not_saved_unless_asked_and_bad_names_refused(server: tuple[Any, str]) -> None:
    app, url = server
    folder = app.paths.data_dir / "outputs" / "extras-images"
    before = sorted(folder.iterdir()) if folder.exists() else []
    answer = requests.post(
        f"{url}/extra-single-image", json={"image": _b64(_image()), "upscaler_1": "Nearest"}, timeout=60
    )
    assert answer.status_code == 200
    assert (sorted(folder.iterdir()) if folder.exists() else []) == before
    bad = requests.post(f"{url}/extra-single-image", json={"image": _b64(_image()), "upscaler_1": "broken"})
    assert bad.status_code == 422 and MODEL in bad.json()["detail"]
    assert requests.get(f"{url}/upscalers", timeout=30).status_code == 200  # still serving


def test_face_restoration_names_what_is_missing(server: tuple[Any, str]) -> None:
    app, url = server
    restorers = requests.get(f"{url}/face-restorers", timeout=30).json()
    gfpgan_dir = app.paths.models_dir / "GFPGAN"
    assert restorers == [  # A1111's order
        {"name": "CodeFormer", "cmd_dir": str(app.paths.models_dir / "Codeformer")},
        {"name": "GFPGAN", "cmd_dir": str(gfpgan_dir)},
    ]
    body = {"image": _b64(_image()), "gfpgan_visibility": 0.5}
    answer = requests.post(f"{url}/extra-single-image", json=body, timeout=60)
    detail = answer.json()["detail"]
    assert answer.status_code == 422
    assert (
        f"GFPGANv1.4.pth in {gfpgan_dir}" in detail
        and f"face_detection_yunet_2023mar.onnx (OpenCV's YuNet) in {gfpgan_dir}" in detail
    )
    # Files that are not what their names say are refused by name, and the server goes on.
    gfpgan_dir.mkdir(parents=True, exist_ok=True)
    for name in ("GFPGANv1.4.pth", "face_detection_yunet_2023mar.onnx"):
        (gfpgan_dir / name).write_bytes(b"placed by the test")
    answer = requests.post(f"{url}/extra-single-image", json=body, timeout=60)
    assert answer.status_code in (400, 422), answer.text
    assert "face_detection_yunet_2023mar.onnx: not a YuNet face detector" in answer.json()["detail"]
    for name in ("GFPGANv1.4.pth", "face_detection_yunet_2023mar.onnx"):
        (gfpgan_dir / name).unlink()
    assert requests.get(f"{url}/upscalers", timeout=30).status_code == 200  # still serving
