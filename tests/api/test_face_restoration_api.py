"""restore_faces through the A1111 API on a real server: a random-weight GFPGAN file placed in the folder
--gfpgan-models-path names, and beside it a face detector file in YuNet's format that OpenCV runs and that
finds one face at known landmarks (tests/upscaler_files.py; the real YuNet file cannot be made offline).
Without the detector file the request is refused naming it; with it, each generated image is restored and
says so in its infotext, and the Extras' GFPGAN visibility runs the same restorer."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy
import pytest
import requests
import torch
from PIL import Image

from tests.conftest import make_app, make_data_dir
from tests.upscaler_files import write_gfpgan, write_yunet_standin
from webui.engine.upscaling import face_align
from webui.engine.upscaling.face_detection import DETECTOR_FILE

SMALL = {"prompt": "a face", "width": 64, "height": 64, "steps": 3, "cfg_scale": 5, "seed": 11}
# A face 10 px between the eyes, in the middle of a 64² picture.
LANDMARKS = face_align.FFHQ_TEMPLATE * 0.08 + numpy.array([11.5, 8.0], numpy.float32)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, tiny_sd1_file: Path) -> Iterator[tuple[Any, str]]:
    from webui.app import serve_in_thread

    torch.set_num_threads(1)
    faces = tmp_path_factory.mktemp("faces")
    write_gfpgan(faces / "GFPGANv1.4.pth")
    data = make_data_dir(tmp_path_factory.mktemp("data"), tiny_sd1_file)
    app = make_app(data, "--api", "--gfpgan-models-path", str(faces))
    app.load_initial_checkpoint()
    http, thread = serve_in_thread(app)
    port = http.servers[0].sockets[0].getsockname()[1]
    yield app, f"http://127.0.0.1:{port}/sdapi/v1"
    http.should_exit = True
    thread.join(10)
    app.jobs.stop()


def _txt2img(url: str, **payload: Any) -> requests.Response:
    return requests.post(f"{url}/txt2img", json={**SMALL, **payload}, timeout=300)


def _decode(text: str) -> numpy.ndarray:
    return numpy.asarray(Image.open(io.BytesIO(base64.b64decode(text))).convert("RGB")).astype(int)


@pytest.mark.slow
def test_restore_faces_end_to_end(server: tuple[Any, str]) -> None:
    app, url = server
    folder = Path(app.extras.faces.folders()["GFPGAN"])
    restorers = requests.get(f"{url}/face-restorers", timeout=30).json()
    assert {"name": "GFPGAN", "cmd_dir": str(folder)} in restorers
    # The detector's file is missing: refused before queueing, naming the file and the folder.
    refused = _txt2img(url, restore_faces=True)
    assert refused.status_code == 422
    assert f"{DETECTOR_FILE} (OpenCV's YuNet) in {folder}" in refused.json()["detail"]
    assert "GFPGANv1.4.pth" not in refused.json()["detail"]  # that one is placed
    write_yunet_standin(folder / DETECTOR_FILE, 64, LANDMARKS)

    plain = _txt2img(url)
    restored = _txt2img(url, restore_faces=True)
    assert plain.status_code == 200 and restored.status_code == 200, restored.text
    info = json.loads(restored.json()["info"])
    assert ", Seed: 11, Face restoration: GFPGAN, Size: 64x64," in info["infotexts"][0]
    assert "Face restoration" not in json.loads(plain.json()["info"])["infotexts"][0]
    before, after = _decode(plain.json()["images"][0]), _decode(restored.json()["images"][0])
    mask = face_align.paste_mask(face_align.alignment(LANDMARKS), 64, 64)
    assert numpy.abs(after - before)[mask > 0.99].mean() > 10  # the face was replaced (random weights)
    assert (after[mask == 0] == before[mask == 0]).all()  # the rest is the same picture

    # The model option "None" restores nothing and writes nothing.
    none = _txt2img(url, restore_faces=True, override_settings={"face_restoration_model": "None"})
    assert _decode(none.json()["images"][0]).tolist() == before.tolist()
    assert "Face restoration" not in json.loads(none.json()["info"])["infotexts"][0]

    # Extras: GFPGAN visibility 1 gives the same restoration of the same picture, with A1111's text.
    extras = requests.post(
        f"{url}/extra-single-image",
        json={"image": plain.json()["images"][0], "gfpgan_visibility": 1, "upscaling_resize": 1},
        timeout=300,
    )
    assert extras.status_code == 200, extras.text
    assert "GFPGAN visibility: 1" in extras.json()["html_info"]
    assert _decode(extras.json()["image"]).tolist() == after.tolist()
