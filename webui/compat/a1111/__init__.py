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
    "devices", "shared_items", "options", "launch_utils",
)  # fmt: skip


def uses_a1111(folder: Path) -> bool:
    """Whether any Python file of the extension (top level or scripts/) imports `modules` or `launch`."""
    files = [*folder.glob("*.py"), *folder.glob("scripts/*.py")]
    return any(_IMPORTS.search(path.read_text(encoding="utf-8", errors="replace")) for path in files)


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
