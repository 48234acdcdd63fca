"""Issue 23: a job that was running when the server was SIGKILLed runs again from its first unsaved image.
The images saved before the kill are kept as they are (not made again), the rest come with the seeds they
would have had (a random seed included), and no image is on disk twice."""

from __future__ import annotations

import base64
import io
import signal
import time
from pathlib import Path

import pytest
import requests
from PIL import Image

from tests.conftest import make_data_dir
from tests.reliability.test_queue_restart import server, view

JOB = {"prompt": "resume me", "seed": -1, "steps": 30, "n_iter": 6, "width": 64, "height": 64}
JOB["save_images"] = True


def saved_images(data: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in sorted((data / "outputs" / "txt2img-images").rglob("*.png"))}


def seed_of(png: bytes) -> int:
    text = Image.open(io.BytesIO(png)).info["parameters"]
    return int(text.split("Seed: ")[1].split(",")[0])


@pytest.mark.slow
def test_killed_job_resumes_after_its_saved_images(tmp_path: Path, tiny_sd1_file: Path) -> None:
    data = make_data_dir(tmp_path / "data", tiny_sd1_file)
    log = tmp_path / "server.log"
    with server(data, log) as (process, url):
        job_id = requests.post(f"{url}/sdapi/v1/queue/txt2img", json=JOB, timeout=60).json()["id"]
        deadline = time.monotonic() + 300
        while len(saved_images(data)) < 2:
            assert time.monotonic() < deadline and view(url, job_id)["status"] != "done", log.read_text()
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    before = saved_images(data)
    assert 2 <= len(before) < 6

    with server(data, log) as (_, url):
        deadline = time.monotonic() + 300
        while (finished := view(url, job_id))["status"] in ("queued", "running"):
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.3)
        assert finished["status"] == "done", log.read_text()
        after = saved_images(data)
        assert {path: after.get(path) for path in before} == before  # kept, not made again
        assert len(after) == 6  # no image twice
        first = seed_of(next(iter(before.values())))
        assert sorted(seed_of(png) for png in after.values()) == list(range(first, first + 6))
        assert len(finished["images"]) == 7  # the batch grid of all six, then the six

        # the same job run whole, without a kill, gives the same six images
        whole = requests.post(f"{url}/sdapi/v1/txt2img", json={**JOB, "seed": first}, timeout=600).json()
    made_whole = [Image.open(io.BytesIO(base64.b64decode(image))) for image in whole["images"]]
    by_seed = {seed_of(png): Image.open(io.BytesIO(png)) for png in after.values()}
    for index, image in enumerate(made_whole[-6:]):
        assert image.tobytes() == by_seed[first + index].convert(image.mode).tobytes(), index
    assert "queued again" in log.read_text()
