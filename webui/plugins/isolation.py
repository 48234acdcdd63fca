"""Isolation of extension code: every call into it goes through `call`, which turns an exception into a
logged, recorded PluginError naming the extension, so one broken extension never breaks the others or
a generation. The Extensions tab lists the records; a generation shows those of its job as warnings.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from webui.core.errors import Interrupted, UserError
from webui.plugins.context import Active, activated

log = logging.getLogger(__name__)

T = TypeVar("T")
KEEP_ERRORS = 200


@dataclass(frozen=True)
class PluginError:
    number: int  # 1, 2, … in the order they happened (a job collects those after its start)
    extension: str
    where: str  # e.g. "import scripts/foo.py", "Watermark.process", "on_ui_tabs"
    error: str  # "ValueError: boom"
    traceback: str

    def summary(self) -> str:
        return f"Extension {self.extension} failed in {self.where}: {self.error}"


class ErrorLog:
    """The most recent KEEP_ERRORS extension errors of one App."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: deque[PluginError] = deque(maxlen=KEEP_ERRORS)
        self._count = 0

    def record(self, extension: str, where: str, error: BaseException) -> PluginError:
        text = "".join(traceback.format_exception(error))
        with self._lock:
            self._count += 1
            entry = PluginError(self._count, extension, where, f"{type(error).__name__}: {error}", text)
            self._entries.append(entry)
        log.error("%s\n%s", entry.summary(), text)
        return entry

    @property
    def count(self) -> int:
        with self._lock:
            return self._count

    def entries(self, after: int = 0) -> list[PluginError]:
        """All kept errors, or those recorded after error number `after` (a `count` taken earlier)."""
        with self._lock:
            return [entry for entry in self._entries if entry.number > after]


class ScriptFailed(UserError):
    """The script chosen for a generation raised: the generation cannot go on without it."""


def call(
    errors: ErrorLog,
    active: Active,
    where: str,
    fn: Callable[..., T],
    *args: Any,
    default: Any = None,
    **kwargs: Any,
) -> T | Any:
    """fn(*args, **kwargs) for extension `active.owner`; on an exception, recorded and `default` returned.

    Interrupted (the user pressed Interrupt inside a script's own generation) passes through."""
    with activated(active):
        try:
            return fn(*args, **kwargs)
        except Interrupted:
            raise
        # whatever an extension raises must not reach the others; record() logs it with its traceback
        except Exception as error:  # noqa: BLE001
            errors.record(active.owner.name, where, error)
            return default


def call_or_fail(errors: ErrorLog, active: Active, where: str, fn: Callable[..., T], *args: Any) -> T:
    """As `call`, for code the job cannot do without (the chosen script's run): a UserError (bad input the
    script found) passes through as it is, any other error is recorded and becomes ScriptFailed."""
    with activated(active):
        try:
            return fn(*args)
        except (Interrupted, UserError):
            raise
        except Exception as error:
            entry = errors.record(active.owner.name, where, error)
            raise ScriptFailed(f"{entry.summary()} (traceback in the log)") from error
