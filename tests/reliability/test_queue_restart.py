"""Issue 23: the queue outlives the server process. SIGKILL a real `launch.py` server with a running job
and 5 queued ones; the restarted server runs them all (the killed one again, first). A corrupt queue file
stops the server with a message naming the file, and the file is left as it was."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import make_data_dir

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
SMALL = {"steps": 1, "width": 64, "height": 64, "save_images": True}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=5).status_code == 200
    except requests.ConnectionError:
        return False


@contextmanager
def server(data: Path, log: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "launch.py", "--skip-install", "--nowebui", "--data-dir", str(data)]
    with open(log, "a") as output:
        process = subprocess.Popen(
            [*command, "--port", str(port)], cwd=ROOT, env=ENV, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 180
        while not _answers(f"{url}/sdapi/v1/progress"):
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
        yield process, url
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)


def view(url: str, job_id: str) -> dict[str, Any]:
    response = requests.get(f"{url}/sdapi/v1/queue/{job_id}", timeout=60)
    assert response.status_code == 200, response.text
    return dict(response.json())


@pytest.mark.slow
def test_sigkill_with_queued_jobs_then_restart_runs_them_all(tmp_path: Path, tiny_sd1_file: Path) -> None:
    data = make_data_dir(tmp_path / "data", tiny_sd1_file)
    log = tmp_path / "server.log"
    with server(data, log) as (process, url):
        earlier = requests.post(
            f"{url}/sdapi/v1/queue/txt2img", json={"prompt": "earlier", "seed": 7, **SMALL}, timeout=60
        ).json()["id"]
        while view(url, earlier)["status"] != "done":
            time.sleep(0.2)
        long = {"prompt": "long", "steps": 150, "n_iter": 100, "width": 64, "height": 64}
        running = requests.post(f"{url}/sdapi/v1/queue/txt2img", json=long, timeout=60).json()["id"]
        queued = [
            requests.post(
                f"{url}/sdapi/v1/queue/txt2img",
                json={"prompt": f"queued {n}", "seed": n, **SMALL},
                timeout=60,
            ).json()["id"]
            for n in range(5)
        ]
        while requests.get(f"{url}/sdapi/v1/progress", timeout=30).json()["state"]["sampling_step"] < 1:
            time.sleep(0.2)
        assert view(url, running)["status"] == "running"
        assert [view(url, job_id)["position"] for job_id in queued] == [1, 2, 3, 4, 5]
        process.send_signal(signal.SIGKILL)
        process.wait(30)

    with server(data, log) as (_, url):
        before = view(url, earlier)  # finished in the first run: its history and image are kept
        assert (before["status"], before["prompt"], len(before["images"])) == ("done", "earlier", 1)
        assert "Seed: 7," in before["infotexts"][0]
        again = view(url, running)
        assert again["status"] in ("queued", "running")
        # first again, as before (only the start-up model load, queued when the server listens, may be ahead)
        assert again["position"] in (0, 1)
        assert all(view(url, job_id)["position"] > again["position"] for job_id in queued)
        assert [view(url, job_id)["status"] for job_id in queued] == ["queued"] * 5
        cancelled = requests.delete(f"{url}/sdapi/v1/queue/{running}", timeout=60).json()
        assert cancelled["id"] == running
        deadline = time.monotonic() + 300
        while any(view(url, job_id)["status"] in ("queued", "running") for job_id in queued):
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
        finished = [view(url, job_id) for job_id in queued]
        assert [job["status"] for job in finished] == ["done"] * 5, log.read_text()
        assert [job["prompt"] for job in finished] == [f"queued {n}" for n in range(5)]
        assert all(len(job["images"]) == 1 for job in finished)
        started = [job["started"] for job in finished]
        assert started == sorted(started)  # in their order
        saved = sorted((data / "outputs").rglob("*.png"))
        assert len(saved) == 6, saved  # the earlier job's and the 5: each ran once, no duplicate files
    assert "queued again" in log.read_text()


@pytest.mark.slow
def test_corrupt_queue_file_stops_the_server_naming_it(tmp_path: Path, tiny_sd1_file: Path) -> None:
    data = make_data_dir(tmp_path / "data", tiny_sd1_file)
    queue_file = data / "queue.sqlite3"
    garbage = b"\x00not a database\xff" * 512
    queue_file.write_bytes(garbage)
    command = [sys.executable, "launch.py", "--skip-install", "--nowebui", "--data-dir", str(data)]
    done = subprocess.run(
        [*command, "--port", str(_free_port())],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert f"The job queue file {queue_file} is not a readable queue database" in output
    assert "Traceback" not in output  # one clear line
    assert queue_file.read_bytes() == garbage  # never emptied
