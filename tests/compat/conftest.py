"""A real App over fixture A1111 extensions (tests/compat/fixtures) copied into a temporary data dir,
started with the flags their preload.py adds, as launch.py starts it."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import browser
from tests.conftest import make_data_dir

__all__ = ["browser"]  # Chromium for test_a1111_browser.py

FIXTURES = Path(__file__).parent / "fixtures"
EXTENSIONS = (
    "sd-webui-prompt-suffix", "sd-webui-seed-variations", "sd-webui-hello-api", "sd-webui-notes-tab",
    "sd-webui-colour-net", "sd-webui-broken", "sd-webui-ratio-buttons",
    "sd-webui-batch-tools", "sd-webui-cfg-probe", "sd-webui-grid-tools",
)  # fmt: skip


def build_app(root: Path, *flags: str) -> Any:
    from webui.app import App
    from webui.core.cmd_args import parse_args
    from webui.plugins.preload import add_extension_flags

    argv = ["--data-dir", str(root), *flags]
    return App(parse_args(argv, extend=lambda parser: add_extension_flags(parser, argv)))


def make_compat_root(root: Path, checkpoint: Path) -> Path:
    make_data_dir(root, checkpoint)
    for name in EXTENSIONS:
        shutil.copytree(FIXTURES / name, root / "extensions" / name)
    return root


@pytest.fixture(scope="module")
def compat_app(tmp_path_factory: pytest.TempPathFactory, tiny_sd1_file: Path) -> Iterator[Any]:
    root = make_compat_root(tmp_path_factory.mktemp("compat-data"), tiny_sd1_file)
    app = build_app(root, "--api", "--hello-greeting", "bonjour")
    app.load_initial_checkpoint()
    yield app
    app.jobs.stop()


@pytest.fixture(scope="module")
def compat_server(tmp_path_factory: pytest.TempPathFactory, tiny_sd1_file: Path) -> Iterator[tuple[Any, str]]:
    """(app, base_url) of a real server over the fixture A1111 extensions."""
    from webui.server import serve_in_thread

    root = make_compat_root(tmp_path_factory.mktemp("compat-server"), tiny_sd1_file)
    app = build_app(root, "--api", "--hello-greeting", "bonjour")
    app.load_initial_checkpoint()
    server, thread = serve_in_thread(app)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield app, f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
    app.jobs.stop()
