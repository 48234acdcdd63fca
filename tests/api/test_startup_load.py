"""Start-up (issue 24): the server serves the page and answers /sdapi/v1/progress while the start-up
checkpoint still loads in the background; a txt2img sent meanwhile waits in the queue and then runs; a
checkpoint that fails to load is reported clearly and the server keeps serving.

The server is started as `webui.app.serve` does (header read before the page is built, the load queued
once it listens). The load is held open by a gate the test wraps around the model manager, so what
"before it finishes" means does not depend on the machine's speed."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests
from safetensors.torch import save_file

from tests.conftest import make_app, make_data_dir

pytestmark = pytest.mark.usefixtures("one_torch_thread")

BODY = {"prompt": "a red square", "steps": 1, "seed": 5, "width": 64, "height": 64}


@contextmanager
def serve_loading_in_background(app: Any) -> Iterator[str]:
    from webui.app import load_then_restore, serve_in_thread

    app.models.prepare_background_load(None)
    server, thread = serve_in_thread(app)
    try:
        load_then_restore(app)
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        app.jobs.stop(timeout=30)


def wait_until(condition: Any, what: str) -> None:
    for _ in range(6000):  # 2 minutes: a busy machine
        if condition():
            return
        threading.Event().wait(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def hold_loading(app: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[threading.Event, threading.Event]:
    """(loading, release): the first checkpoint load sets `loading`, then waits until the test sets
    `release` (the test's own slow load; later loads pass straight through)."""
    loading, release = threading.Event(), threading.Event()
    real_get = app.manager.get

    def held_get(wanted: str | None = None) -> Any:
        loading.set()
        assert release.wait(120)
        return real_get(wanted)

    monkeypatch.setattr(app.manager, "get", held_get)
    return loading, release


def broken_checkpoint(folder: Path) -> Path:
    """A valid safetensors file that is no model: loading it fails with 'unknown architecture'."""
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "broken.safetensors"
    save_file({"not_a_model.weight": torch.zeros(4)}, str(path))
    return path


def test_page_progress_and_a_queued_txt2img_while_the_checkpoint_loads(
    tmp_path: Path, tiny_sd1_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(make_data_dir(tmp_path, tiny_sd1_file), "--api")
    loading, release = hold_loading(app, monkeypatch)
    with serve_loading_in_background(app) as url:
        assert loading.wait(60), "the start-up load never began"
        page = requests.get(f"{url}/", timeout=30)
        assert page.status_code == 200 and "gradio" in page.text.lower()
        progress = requests.get(f"{url}/sdapi/v1/progress", timeout=30).json()
        assert progress["state"]["job"] == "checkpoint"
        status = app.models.load_status()
        assert status.state == "loading" and "Loading model tiny-sd1.safetensors" in status.message
        early_defaults = app.models.model_defaults()  # what the page was built with: from the header
        with ThreadPoolExecutor(1) as pool:
            answer = pool.submit(requests.post, f"{url}/sdapi/v1/txt2img", json=BODY, timeout=300)
            wait_until(lambda: len(app.jobs.pending()) == 1, "the txt2img to be queued")
            assert app.manager.current is None and not answer.done()
            release.set()
            response = answer.result(300)
        assert response.status_code == 200, response.text
        assert len(response.json()["images"]) == 1
        assert "tiny-sd1" in response.json()["info"]
        assert app.models.load_status().state == "ready"
        assert app.models.model_defaults() == early_defaults
        assert app.models.current_title().startswith("tiny-sd1")


def test_a_checkpoint_that_fails_to_load_is_reported_and_the_server_keeps_serving(tmp_path: Path) -> None:
    app = make_app(make_data_dir(tmp_path / "data", broken_checkpoint(tmp_path)), "--api")
    with serve_loading_in_background(app) as url:
        wait_until(lambda: app.models.load_status().state != "loading", "the load to end")
        status = app.models.load_status()
        assert status.state == "failed"
        assert "broken.safetensors" in status.message and "unknown architecture" in status.message
        assert requests.get(f"{url}/", timeout=30).status_code == 200
        assert requests.get(f"{url}/sdapi/v1/progress", timeout=30).status_code == 200
        response = requests.post(f"{url}/sdapi/v1/txt2img", json=BODY, timeout=300)
        assert response.status_code == 400
        assert "broken.safetensors" in response.text and "unknown architecture" in response.text
        assert requests.get(f"{url}/sdapi/v1/sd-models", timeout=30).status_code == 200
