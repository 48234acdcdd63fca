"""Fixtures shared by the API and browser tests: a real App on a real server over a tiny checkpoint."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_sd1_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny SD1-architecture checkpoint in the A1111/LDM key layout (built once per session)."""
    from tools.tiny_models import save_tiny_checkpoint

    return save_tiny_checkpoint(tmp_path_factory.mktemp("tiny-ckpt") / "tiny-sd1.safetensors", "sd1", seed=0)


def make_data_dir(root: Path, *checkpoints: Path) -> Path:
    """A --data-dir with the given checkpoints under models/Stable-diffusion."""
    ckpt_dir = root / "models" / "Stable-diffusion"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    for checkpoint in checkpoints:
        shutil.copy(checkpoint, ckpt_dir / checkpoint.name)
    return root


def make_app(data_dir: Path, *flags: str):
    from webui.app import App
    from webui.core.cmd_args import parse_args

    return App(parse_args(["--data-dir", str(data_dir), *flags]))


@pytest.fixture(scope="module")
def running_app(
    tmp_path_factory: pytest.TempPathFactory, tiny_sd1_file: Path
) -> Iterator[tuple[object, str]]:
    """(app, base_url) of a server on 127.0.0.1 with the UI and the API, serving the tiny checkpoint."""
    from webui.app import serve_in_thread

    app = make_app(make_data_dir(tmp_path_factory.mktemp("data"), tiny_sd1_file), "--api")
    app.load_initial_checkpoint()
    server, thread = serve_in_thread(app)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield app, f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
    app.jobs.stop()


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """One torch thread for the modules that generate images (`pytestmark = usefixtures(...)`): tiny
    tensors gain little from a second thread, and on a busy 2-core machine two threads made those tests
    several times slower (measured: 4 min vs 45 s)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
