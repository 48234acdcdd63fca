"""Which App's plugin registry extension code is talking to right now.

Extension scripts call module-level functions (`on_ui_tabs(fn)`, `add_option(...)`, `basedir()`) at
import time, as in A1111. There is no module global to register into (tests build many Apps), so the
registry sets a ContextVar to itself and the extension being served for the duration of each import
and of every call into extension code; the module-level functions in webui.plugins.api read it. A
ContextVar rather than a global: it is restored when the call ends and is private to its thread, so two
Apps loading at the same time never see each other's registry.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from webui.plugins.registry import Plugins


@dataclass(frozen=True)
class Owner:
    """The extension a script or callback belongs to: its name (for error reports) and folder."""

    name: str
    path: Path


@dataclass(frozen=True)
class Active:
    plugins: Plugins
    owner: Owner


_ACTIVE: ContextVar[Active] = ContextVar("webui_plugins_active")


@contextmanager
def activated(active: Active) -> Iterator[None]:
    token = _ACTIVE.set(active)
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def current() -> Active:
    try:
        return _ACTIVE.get()
    except LookupError:
        raise RuntimeError(
            "webui.plugins.api registration functions work only while the web UI loads an extension's "
            "scripts or calls into its code (call them at the top level of a file in scripts/)"
        ) from None
