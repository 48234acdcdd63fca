"""One queue of generation jobs, run one at a time on a worker thread; the UI and the API share it.

The runner (the engine, seen from here as a plain callable) reports progress on the Job and polls its
`interrupted` / `skipped` flags; the queue turns that into the view A1111's /sdapi/v1/progress gives.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol
from uuid import uuid4

from webui.core.errors import Interrupted, InvalidParameter, UserError
from webui.services.fair_queue import FairQueue

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


class Journal(Protocol):
    """Where the queue writes the jobs it keeps across restarts (services/queue_store.StoreJournal)."""

    def keeps(self, job: Job) -> bool: ...
    def added(self, job: Job) -> None: ...
    def started(self, job: Job) -> None: ...
    def finished(self, job: Job, status: JobStatus, error: BaseException | None, requeue: bool) -> None: ...
    def file(self, job: Job, index: int, path: str, infotext: str) -> None: ...
    def reordered(self, jobs: Sequence[Job]) -> None: ...
    def restore(self, clock: Callable[[], float]) -> list[Job]: ...
    def history(self, job_id: str) -> Any: ...


KEEP_FINISHED = 200  # finished jobs the queue still finds by id (the API's queue routes)


class JobQueue:
    """Jobs served by one worker thread between `start()` and `stop()`: owners take turns, each owner's
    jobs in their order (services/fair_queue.py). With a `journal`, generation jobs outlive a restart.

    `runner(params, job)` returns the job's result. A runner that raises fails only its own job; one that
    raises Interrupted (or returns after the interrupt flag was set) ends the job as interrupted.
    """

    def __init__(
        self,
        runner: Callable[[Any, Job], Any],
        *,
        clock: Callable[[], float] = time.time,
        limits: Callable[[], AdmissionLimits] = AdmissionLimits,
        journal: Journal | None = None,
    ) -> None:
        self._runner = runner
        self._clock = clock
        self._limits = limits  # read at each submit, so a changed setting holds at once
        self._closed = False  # shutting down: no more jobs are taken
        self._cond = threading.Condition()
        self._pending: FairQueue[Job] = FairQueue()
        self._current: Job | None = None
        self._journal = journal
        self._restored = False
        self._known: OrderedDict[str, Job] = OrderedDict()  # queued, running and recently finished
        self._thread: threading.Thread | None = None
        self._stopping = False

    def submit(
        self, params: Any, kind: str = "txt2img", owner: str | None = None, job_id: str | None = None
    ) -> Job:
        """Queue a job (with `job_id`: A1111's force_task_id; refused when that id is taken); QueueFull
        beyond the admission limits, ShuttingDown once `shut_down` was called."""
        job = Job(params, kind, self._clock, owner, job_id)
        limits = self._limits()
        with self._cond:
            if job_id is not None and job_id in self._known:
                raise InvalidParameter(f"force_task_id {job_id!r} is already a job's id")
            if self._closed:
                raise ShuttingDown("The server is shutting down and takes no new jobs; try again later")
            waiting = [*self._pending, *([self._current] if self._current is not None else [])]
            if limits.total and len(waiting) >= limits.total:
                raise QueueFull(
                    f"The queue is full ({len(waiting)} jobs, limit {limits.total}); try again later"
                )
            mine = sum(1 for other in waiting if owner is not None and other.owner == owner)
            if limits.per_owner and owner is not None and mine >= limits.per_owner:
                raise QueueFull(
                    f"You have {mine} jobs waiting (limit {limits.per_owner} per client); wait for them "
                    "to finish before sending more"
                )
            self._enqueue(job)
            self._cond.notify()
        return job

    def _enqueue(self, job: Job) -> None:
        """Under the lock: the job waits its turn, written to the journal when it keeps such jobs."""
        if self._journal is not None and self._journal.keeps(job):
            self._journal.added(job)
            job.on_file = self._record_file
        self._pending.append(job)
        self._known[job.id] = job
        while len(self._known) > KEEP_FINISHED and next(iter(self._known.values())).done:
            self._known.popitem(last=False)

    def _record_file(self, job: Job, index: int, path: str, infotext: str) -> None:
        if self._journal is not None:
            self._journal.file(job, index, path, infotext)

    def known(self) -> list[Job]:
        """Queued, running and recently finished jobs, oldest first."""
        with self._cond:
            return list(self._known.values())

    def history(self, job_id: str) -> Any:
        """A job the journal kept (finished ones of earlier runs too), as the journal reads it; None when
        it has none."""
        return self._journal.history(job_id) if self._journal is not None else None

    def find(self, job_id: str) -> Job | None:
        """A queued, running or recently finished job by id."""
        with self._cond:
            return self._known.get(job_id)

    def position(self, job: Job) -> int | None:
        """How many jobs run before this one (0: next, or running); None once it has finished."""
        with self._cond:
            if job is self._current:
                return 0
            for index, other in enumerate(self._pending):
                if other is job:
                    return index + (self._current is not None)
            return None

    def move(self, job: Job, by: int) -> bool:
        """Move a waiting job `by` places among its owner's waiting jobs (negative: sooner); False when
        it no longer waits."""
        with self._cond:
            if job not in self._pending:
                return False
            order = self._pending.move(job, by)
            if self._journal is not None:
                self._journal.reordered([other for other in order if other.durable])
            return True

    def cancel(self, job: Job) -> None:
        """The job's requester is gone: drop it from the queue, or interrupt it when it is running."""
        with self._cond:
            if job in self._pending:
                self._pending.remove(job)
            elif job is self._current:
                job._interrupt.set()
                return
            else:
                return
        self._journal_finished(job, JobStatus.CANCELLED)
        job._finish(JobStatus.CANCELLED, error=Interrupted("cancelled: its client disconnected"))

    def shut_down(self, grace: float) -> threading.Thread | None:
        """Take no more jobs, let the running one finish for up to `grace` seconds, then interrupt it.
        Queued jobs stay queued (their waiters are told: see `closed`). Returns the worker to join."""
        with self._cond:
            self._closed = self._stopping = True
            self._cond.notify_all()
            thread, current, waiting = self._thread, self._current, list(self._pending)
        for job in waiting:
            job._notify()
        if current is not None:
            timer = threading.Timer(grace, current._interrupt.set)
            timer.daemon = True
            timer.start()
        return thread

    @property
    def closed(self) -> bool:
        return self._closed

    def start(self) -> None:
        """Start serving jobs (queued ones included); calling it while running is harmless."""
        with self._cond:
            self._stopping = self._closed = False
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="job-worker", daemon=True)
                self._thread.start()

    def restore(self) -> int:
        """Queue again the jobs the journal kept from the last run (once; the server calls it when it is
        ready to serve, so they do not hold up its start). Returns how many."""
        with self._cond:
            if self._journal is None or self._restored:
                return 0
            self._restored = True
            jobs = self._journal.restore(self._clock)
            for job in jobs:
                job.on_file = self._record_file
                self._pending.append(job)
                self._known[job.id] = job
            self._cond.notify()
        if jobs:
            log.info("Queue: %d job(s) from the last run queued again", len(jobs))
        return len(jobs)

    def stop(self, timeout: float | None = None) -> None:
        """Stop the worker after the running job; queued jobs stay queued for the next `start()`."""
        with self._cond:
            thread = self._thread
            self._stopping = True
            self._cond.notify_all()
        if thread is not None:
            thread.join(timeout)

    def current(self) -> Job | None:
        with self._cond:
            return self._current

    def pending(self) -> list[Job]:
        """Jobs still waiting, in the order they will run."""
        with self._cond:
            return list(self._pending)

    def interrupt(self) -> bool:
        """Ask the running job to stop; False when none is running."""
        return self._flag_current(lambda job: job._interrupt.set())

    def skip(self) -> bool:
        """Ask the running job to end its current batch; False when none is running."""
        return self._flag_current(lambda job: job._skip.set())

    def progress(self) -> Progress:
        job = self.current()
        return job.progress() if job is not None else Progress(0.0, 0.0, idle_state(), None)

    def _flag_current(self, action: Callable[[Job], None]) -> bool:
        with self._cond:
            if self._current is None:
                return False
            action(self._current)
            return True

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    self._thread = None  # under the lock, so a concurrent start() makes a new worker
                    return
                job = self._current = self._pending.popleft()
                job._begin()
                if self._journal is not None and job.durable:
                    self._journal.started(job)
            outcome = self._run(job)
            with self._cond:
                self._current = None  # before waking waiters, so they never see a finished job as current
            self._journal_finished(job, outcome[0], outcome[2])
            job._finish(*outcome)

    def _journal_finished(self, job: Job, status: JobStatus, error: BaseException | None = None) -> None:
        if self._journal is None or not job.durable:
            return
        # A job stopped by the shutdown runs again after the restart, as a queued one would.
        requeue = self._closed and status is JobStatus.INTERRUPTED
        self._journal.finished(job, status, error, requeue)

    def _run(self, job: Job) -> tuple[JobStatus, Any, BaseException | None]:
        try:
            result = self._runner(job.params, job)
        except Interrupted as exc:
            return JobStatus.INTERRUPTED, None, exc
        except UserError as exc:
            log.warning("%s failed: %s", job, exc)
            return JobStatus.FAILED, None, exc
        except Exception as exc:  # the worker must survive any runner bug and serve the next job
            log.exception("%s failed", job)
            return JobStatus.FAILED, None, exc
        return (JobStatus.INTERRUPTED if job.interrupted else JobStatus.DONE), result, None
