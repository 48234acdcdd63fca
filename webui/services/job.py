"""One queued job as its submitter and the runner see it: status, progress, the interrupt/skip flags,
the result or error, and the queue's refusals (full, shutting down)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any
from uuid import uuid4

from webui.core.errors import UserError

log = logging.getLogger(__name__)


class JobStatus(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    CANCELLED = "cancelled"  # taken out of the queue before it ran (its client went away)


class QueueFull(UserError):
    """Admission control: too many jobs waiting (HTTP 429); the message says which limit and what to do."""

    status_code = 429


class ShuttingDown(UserError):
    """The server is stopping and takes no more jobs (HTTP 503)."""

    status_code = 503


@dataclass(frozen=True)
class AdmissionLimits:
    """How many jobs may wait (queued or running) in all, and per owner (a client); 0: no limit."""

    total: int = 0
    per_owner: int = 0


@dataclass(frozen=True)
class Progress:
    """A snapshot shaped like A1111's progress response (the API encodes the preview)."""

    progress: float  # 0..1 over the whole job, all batches included
    eta_relative: float  # seconds left, estimated from elapsed time and progress; 0 when unknown
    state: dict[str, Any] = field(default_factory=dict)
    current_preview: object | None = None


def idle_state() -> dict[str, Any]:
    """A1111's state dict when nothing is running."""
    return {
        "skipped": False,
        "interrupted": False,
        "job": "",
        "job_count": 0,
        "job_timestamp": "0",
        "job_no": 0,
        "sampling_step": 0,
        "sampling_steps": 0,
    }


class Job:
    """One request waiting in, or taken from, the queue.

    The runner calls `set_batches(n)` once when the job has several batches (A1111's n_iter),
    `next_batch()` before each batch after the first, and `report(step, total, preview)` after each
    sampling step; it polls `interrupted` (stop everything) and `skipped` (end this batch).
    """

    def __init__(
        self,
        params: Any,
        kind: str,
        clock: Callable[[], float],
        owner: str | None = None,
        job_id: str | None = None,
    ) -> None:
        self.id = job_id or uuid4().hex
        self.kind = kind
        self.owner = owner
        self.params = params
        self.status = JobStatus.QUEUED
        self.created = clock()
        self.started: float | None = None
        self.finished: float | None = None
        self.result: Any = None
        self.error: BaseException | None = None
        self._clock = clock
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._interrupt = threading.Event()
        self._skip = threading.Event()
        self._step = 0
        self._steps = 0
        self._batch = 0
        self._batches = 1
        self._preview: object | None = None
        self._listeners: list[Callable[[], None]] = []
        self._files = 0  # images saved so far (their index in the job)
        self._shown: list[tuple[Any, str, int]] = []  # finished images (image, infotext, seed), in order
        # (path, infotext) of the images this job saved before the server stopped: it resumes after them
        self.saved_before_restart: tuple[tuple[str, str], ...] = ()
        self.meta: dict[str, Any] = {}  # what its requester needs to answer later (the API's echo)
        self.on_file: Callable[[Job, int, str, str], None] | None = None  # the durable queue's record

    def __repr__(self) -> str:
        return f"Job({self.id[:8]}, {self.kind}, {self.status.value})"

    # What the runner uses.

    @property
    def interrupted(self) -> bool:
        return self._interrupt.is_set()

    @property
    def skipped(self) -> bool:
        return self._skip.is_set()

    def report(self, step: int, total: int, preview: object | None = None) -> None:
        """Sampling step `step` of `total` in the current batch is done; a preview replaces the last one."""
        with self._lock:
            self._step, self._steps = step, total
            if preview is not None:
                self._preview = preview

    def set_batches(self, count: int) -> None:
        if count < 1:
            raise ValueError(f"a job has at least one batch, got {count}")
        with self._lock:
            self._batches = count

    @property
    def durable(self) -> bool:
        """Kept in the durable queue (it outlives a restart)."""
        return self.on_file is not None

    def record_file(self, path: str, infotext: str) -> None:
        """An image of this job was saved (the durable queue keeps the list with the job)."""
        with self._lock:
            index, self._files = self._files, self._files + 1
        if self.on_file is not None:
            self.on_file(self, index, path, infotext)

    def count_files_from(self, count: int) -> None:
        """The next image saved is the job's image `count` (a resumed job keeps its first images)."""
        with self._lock:
            self._files = count

    def show(self, image: Any, infotext: str, seed: int) -> None:
        """An image of this job is finished: waiters may show it before the whole job ends."""
        with self._lock:
            self._shown.append((image, infotext, seed))

    def next_batch(self) -> None:
        """The previous batch is finished (or skipped); a skip applies to one batch only."""
        with self._lock:
            self._batch += 1
            self._step = 0
        self._skip.clear()

    # What waiters and the progress view use.

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> Any:
        """The runner's result once the job has finished; raises the job's error if it had one."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"job {self.id} still {self.status.value} after {timeout} s")
        if self.error is not None:
            raise self.error
        return self.result

    def finished_images(self) -> list[tuple[Any, str, int]]:
        """The images finished so far (image, infotext, seed), while the job still runs."""
        with self._lock:
            return list(self._shown)

    def add_listener(self, listener: Callable[[], None]) -> None:
        """Call `listener()` (from any thread) when the job finishes, or when the queue shuts down while
        the job still waits; at once when the job is already done. Async waiters use it instead of a
        thread blocked in `wait`."""
        with self._lock:
            if not self.done:
                self._listeners.append(listener)
                return
        listener()

    def _notify(self) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener()

    def progress(self) -> Progress:
        with self._lock:
            within = min(self._step / self._steps, 1.0) if self._steps > 0 else 0.0
            fraction = min((self._batch + within) / self._batches, 1.0)
            if self.done:
                fraction = 1.0
            eta = 0.0
            if self.status is JobStatus.RUNNING and self.started is not None and fraction > 0:
                elapsed = self._clock() - self.started
                eta = max(elapsed / fraction - elapsed, 0.0)
            label = f"Batch {self._batch + 1} out of {self._batches}" if self._batches > 1 else self.kind
            state = {
                "skipped": self.skipped,
                "interrupted": self.interrupted,
                "job": label,
                "job_count": self._batches,
                "job_timestamp": time.strftime("%Y%m%d%H%M%S", time.localtime(self.started or self.created)),
                "job_no": self._batch,
                "sampling_step": self._step,
                "sampling_steps": self._steps,
            }
            return Progress(fraction, eta, state, self._preview)

    # What the queue uses.

    def _begin(self) -> None:
        with self._lock:
            self.status = JobStatus.RUNNING
            self.started = self._clock()

    def _finish(self, status: JobStatus, result: Any = None, error: BaseException | None = None) -> None:
        with self._lock:
            self.status, self.result, self.error = status, result, error
            self.finished = self._clock()
        self._done.set()
        self._notify()
