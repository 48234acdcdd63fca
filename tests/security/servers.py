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
