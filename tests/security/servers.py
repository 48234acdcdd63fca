"""Real servers for the security and reliability tests: an App on 127.0.0.1, tiny PNGs as base64."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from PIL import Image

from tests.conftest import make_app


@contextmanager
def served(data_dir: Path, *flags: str, load_model: bool = False) -> Iterator[tuple[Any, str, Any]]:
    """(app, base url, the ASGI app) of a server on a free port, stopped afterwards."""
    from webui.app import serve_in_thread

    app = make_app(data_dir, *flags)
    if load_model:
        app.load_initial_checkpoint()
    server, thread = serve_in_thread(app)
    try:
        yield app, f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}", server.config.app
    finally:
        app.jobs.interrupt()
        server.should_exit = True
        thread.join(30)
        app.jobs.stop(30)


def png_base64(width: int, height: int, mode: str = "RGB") -> str:
    buffer = io.BytesIO()
    Image.new(mode, (width, height)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


@contextmanager
def launched(data_dir: Path, log: Path, *flags: str) -> Iterator[str]:
    """The base url of a real `python launch.py --skip-install --nowebui` process (clients in this
    process then compete with the server for nothing, as real clients do), killed afterwards."""
    import os
    import socket
    import subprocess
    import sys
    import time

    import requests

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "launch.py", "--skip-install", "--nowebui", "--data-dir", str(data_dir)]
    with open(log, "w") as output:
        process = subprocess.Popen(
            [*command, "--port", str(port), *flags],
            cwd=root,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            try:
                if requests.get(f"{url}/sdapi/v1/progress", timeout=5).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.5)
        yield url
    finally:
        process.kill()
        process.wait(30)
