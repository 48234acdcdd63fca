"""The App whose extension code is running, and the per-App copies of the modules that hold views.

`modules.shared`, `modules.paths` and `modules.scripts` answer names such as `opts` with a view onto one
App. Inside a call into extension code the App is known (plugins.context); an extension's own gradio
handlers and FastAPI routes run outside such calls, so each App gets its own copy of those modules,
bound to it (`bound_copy`), and that copy is what its extensions import.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any

from webui.plugins.context import current

if TYPE_CHECKING:
    from webui.compat.a1111.state import CompatState
    from webui.plugins.registry import Plugins

Views = Mapping[str, Callable[["Plugins"], Any]]


def plugins() -> Plugins:
    """The running App's plugin registry (raises, naming the problem, outside extension calls)."""
    return current().plugins


def compat() -> CompatState:
    state = plugins().compat
    if state is None:  # install() makes it before any A1111 extension code runs
        raise RuntimeError("the A1111 compatibility layer is not installed for this App")
    return state


def view(module: str, views: Views, name: str, bound: Plugins | None = None) -> Any:
    """Module `__getattr__`: the view `name` onto the bound App, else the running one."""
    if name not in views:
        raise AttributeError(f"{module} has no attribute {name!r} in this web UI's A1111 layer")
    return views[name](bound if bound is not None else plugins())


def bound_copy(original: ModuleType, plugins: Plugins) -> ModuleType:
    """A copy of `original` (same functions and classes) whose views read `plugins`."""
    copy = ModuleType(original.__name__, original.__doc__)
    copy.__dict__.update({k: v for k, v in vars(original).items() if k != "__getattr__"})
    views = original.VIEWS
    copy.__dict__["__getattr__"] = functools.partial(view, original.__name__, views, bound=plugins)
    return copy


def serve(name: str, module: ModuleType) -> None:
    """Make `import modules.<name>` (and `from modules import <name>`) find `module`."""
    sys.modules[f"modules.{name}"] = module
    setattr(sys.modules["modules"], name, module)
