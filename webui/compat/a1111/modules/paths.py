"""modules.paths (and paths_internal): A1111's folders, for the running App."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from webui.compat.a1111.modules import _app
from webui.core.cmd_args import REPO_ROOT

if TYPE_CHECKING:
    from webui.plugins.registry import Plugins

script_path = str(REPO_ROOT)
extensions_builtin_dir = str(REPO_ROOT / "extensions-builtin")


def _data_dir(plugins: Plugins) -> Path:
    return plugins.user_dir.parent


VIEWS: dict[str, Callable[[Plugins], Any]] = {
    "data_path": lambda plugins: str(_data_dir(plugins)),
    "models_path": lambda plugins: str(_data_dir(plugins) / "models"),
    "extensions_dir": lambda plugins: str(plugins.user_dir),
    "default_output_dir": lambda plugins: str(_data_dir(plugins) / "outputs"),
}


def __getattr__(name: str) -> Any:
    return _app.view(__name__, VIEWS, name)
