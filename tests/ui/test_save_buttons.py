"""📂 is never offered to a remote user: hidden when the UI is reachable from other machines."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.conftest import make_app, make_data_dir
from webui.core.cmd_args import parse_args
from webui.ui.save_buttons import folder_openable


@pytest.mark.parametrize(
    ("flags", "offered"),
    [
        ((), True),
        (("--server-name", "localhost"), True),
        (("--server-name", "127.0.0.1"), True),
        (("--listen",), False),
        (("--share",), False),
        (("--server-name", "192.168.1.5"), False),
        (("--hide-ui-dir-config",), False),
    ],
)
def test_open_folder_is_offered_only_to_a_local_ui(flags: tuple[str, ...], offered: bool) -> None:
    assert folder_openable(SimpleNamespace(args=parse_args(list(flags)))) is offered  # type: ignore[arg-type]


@pytest.fixture
def listening_app(tmp_path: Path) -> Any:
    app = make_app(make_data_dir(tmp_path / "data"), "--listen")
    yield app
    app.jobs.stop()


def test_the_listening_page_hides_open_folder_and_keeps_save_and_zip(listening_app: Any) -> None:
    from webui.ui.blocks import build_ui

    page = build_ui(listening_app.services)
    buttons = {block.elem_id: block for block in page.blocks.values() if getattr(block, "elem_id", None)}
    for tab in ("txt2img", "img2img"):
        assert buttons[f"{tab}_open_folder"].visible is False
        assert buttons[f"save_{tab}"].visible is True
        assert buttons[f"save_zip_{tab}"].visible is True
