"""Importing an extension's scripts/*.py and finding the Script subclasses they define."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

from webui.plugins.script import Script


def module_name(prefix: str, extension: str, path: Path) -> str:
    """A module name unique to this App (`prefix`), extension and file, so two Apps never share one."""
    safe = re.sub(r"\W", "_", f"{extension}_{path.stem}")
    return f"_webui_ext_{prefix}_{safe}"


def import_script_file(name: str, path: Path) -> ModuleType:
    """Execute `path` as module `name` (registered in sys.modules, as dataclasses and pickle expect)."""
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def script_classes(module: ModuleType) -> list[type[Script]]:
    """Script subclasses defined in `module` itself (imported ones belong to their own file)."""
    return [
        value
        for value in vars(module).values()
        if isinstance(value, type) and issubclass(value, Script) and value.__module__ == module.__name__
    ]
