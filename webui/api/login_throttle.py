"""Slowing down password guessing: per client, after a few failed logins every further attempt waits
longer (2 s, 4 s, 8 s … up to 5 minutes), for the UI's login (--gradio-auth) and the API's HTTP Basic
(--api-auth) alike. During a lock-out even the right password is refused (429 with Retry-After), so a
guesser learns nothing from trying."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

FREE_FAILURES = 5  # mistyped passwords a client may make before it is slowed down
MAX_LOCKOUT_S = 300.0
FORGET_AFTER_S = 3600.0  # a client's failures are forgotten after this long without one
MAX_CLIENTS = 10_000  # remembered clients at most; the oldest are forgotten first


@dataclass
class _Record:
    failures: int = 0
    last_failure: float = 0.0
    locked_until: float = 0.0


class LoginThrottle:
    """Failed logins per client key (its address). Thread-safe."""

    def __init__(
        self,
        free_failures: int = FREE_FAILURES,
        max_lockout_s: float = MAX_LOCKOUT_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.free_failures = free_failures
        self.max_lockout_s = max_lockout_s
        self._clock = clock
        self._lock = threading.Lock()
        self._records: dict[str, _Record] = {}

    def retry_after(self, client: str) -> float:
        """Seconds `client` must wait before its next login attempt counts; 0 when it may try now."""
        with self._lock:
            record = self._records.get(client)
            return max(record.locked_until - self._clock(), 0.0) if record else 0.0

    def failed(self, client: str) -> None:
        now = self._clock()
        with self._lock:
            record = self._records.get(client)
            if record is None or now - record.last_failure > FORGET_AFTER_S:
                record = _Record()
            self._records.pop(client, None)
            self._records[client] = record  # newest last: the oldest are dropped first below
            record.failures += 1
            record.last_failure = now
            beyond = record.failures - self.free_failures
            if beyond > 0:
                record.locked_until = now + min(2.0**beyond, self.max_lockout_s)
            while len(self._records) > MAX_CLIENTS:
                del self._records[next(iter(self._records))]

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._records.pop(client, None)
