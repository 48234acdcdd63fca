"""The job worker's switchboard: each queued request is plain data, run by the handler registered for its
type (generation, checkpoint or VAE switch, preprocessor preview)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from webui.services.job import Job

R = TypeVar("R")


class JobRunner:
    def __init__(self) -> None:
        self._handlers: dict[type, Callable[[Any, Job], Any]] = {}

    def register(self, kind: type[R], handler: Callable[[R, Job], Any]) -> None:
        self._handlers[kind] = handler

    def __call__(self, request: Any, job: Job) -> Any:
        handler = self._handlers.get(type(request))
        if handler is None:
            raise TypeError(f"no handler for queued {type(request).__name__}")
        return handler(request, job)
