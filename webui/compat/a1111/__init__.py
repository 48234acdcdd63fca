"""Running AUTOMATIC1111 extensions unchanged: `modules.*` and `launch` served as views onto our App.

Imported only when an extension's files import `modules` or `launch` (a cheap scan of its source, see
`uses_a1111`). `install(plugins)` then puts this package's `modules` into sys.modules, where the
extension's `import modules.scripts` finds it (modules holding views bound to the App: see
modules/_app.py), and gives the App a per-App `CompatState` (extra networks,
A1111-only callbacks, paste buttons). None of A1111's module-level state exists: `shared.opts`,
`shared.state`, `shared.cmd_opts` … look up the App whose extension code is running (plugins.context).
"""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from webui.compat.a1111.modules import _app
from webui.compat.a1111.state import CompatState

if TYPE_CHECKING:
    from webui.plugins.registry import Plugins

PYTHONPATH_DIR = Path(__file__).resolve().parent / "pythonpath"  # holds `launch` for install.py
_IMPORTS = re.compile(r"^\s*(?:from|import)\s+(?:modules|launch)\b", re.MULTILINE)
SUBMODULES = (
    "scripts", "script_callbacks", "shared", "processing", "images", "paths", "paths_internal",
    "ui_components", "extra_networks", "infotext_utils", "generation_parameters_copypaste", "sd_samplers",
    "devices", "shared_items", "options", "launch_utils", "hashes", "sd_models", "ui_common", "extras",
    "postprocessing", "ui",
)  # fmt: skip


def uses_a1111(folder: Path, limit: int = 2000) -> bool:
    """Whether a Python file of the extension (its own packages included, at most `limit` files)
    imports `modules` or `launch`."""
    files = (path for path in folder.rglob("*.py") if not any(part.startswith(".") for part in path.parts))
    for count, path in enumerate(files):
        if count >= limit:
            return False
        if _IMPORTS.search(path.read_text(encoding="utf-8", errors="replace")):
            return True
    return False


@contextmanager
def on_sys_path(folder: Path) -> Iterator[None]:
    """A1111 puts the extension's folder first on sys.path while its scripts load, so they import their
    own packages (`import sd_dynamic_prompts`, `from scripts.helper import …`)."""
    sys.path.insert(0, str(folder))
    try:
        yield
    finally:
        if str(folder) in sys.path:
            sys.path.remove(str(folder))


def install(plugins: Plugins) -> CompatState:
    """Serve `modules.*` from now on, the view modules bound to this App; its CompatState (made once)."""
    from webui.compat.a1111 import gradio_shim  # here: the package is imported without gradio too

    gradio_shim.install()
    sys.modules["modules"] = importlib.import_module("webui.compat.a1111.modules")
    if plugins.compat is None:
        plugins.compat = CompatState(plugins)
    for name in SUBMODULES:
        module = importlib.import_module(f"webui.compat.a1111.modules.{name}")
        if hasattr(module, "VIEWS"):  # opts, state, paths …: a copy bound to this App
            module = plugins.compat.modules.setdefault(name, _app.bound_copy(module, plugins))
        _app.serve(name, module)
    return plugins.compat
