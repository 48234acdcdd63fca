"""One queue of generation jobs, run one at a time on a worker thread; the UI and the API share it.
What one queued job is (its status, progress, interrupt flags and result) is services/job.py.

The runner (the engine, seen from here as a plain callable) reports progress on the Job and polls its
`interrupted` / `skipped` flags; the queue turns that into the view A1111's /sdapi/v1/progress gives.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from webui.core.errors import Interrupted, InvalidParameter, UserError
from webui.services.fair_queue import FairQueue
from webui.services.job import AdmissionLimits, Job, JobStatus, Progress, QueueFull, ShuttingDown, idle_state

log = logging.getLogger(__name__)


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
    def finished_jobs(self, owner: str | None, limit: int) -> Sequence[Any]: ...


KEEP_FINISHED = 200  # finished jobs the queue still finds by id (the API's queue routes)
BESIDE_POLL = 0.25  # seconds between asking whether the next job may start beside the running ones


class JobQueue:
    """Jobs served between `start()` and `stop()`: owners take turns, each owner's jobs in their order
    (services/fair_queue.py). One job runs at a time unless `beside(running, job)` lets the next one
    start beside the running ones (generation workers: services/workers). With a `journal`, generation
    jobs outlive a restart.

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
        self._running: list[Job] = []  # oldest first; one unless `beside` lets more run
        self._serving = 0  # job threads not done yet (a job leaves _running just before it finishes)
        # whether `job` may start while `running` run (the App sets it when workers run the generations)
        self.beside: Callable[[Sequence[Job], Job], bool] = lambda running, job: False
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
            waiting = [*self._pending, *self._running]
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

    def finished_history(self, owner: str | None, limit: int = 50) -> Sequence[Any]:
        """The newest finished jobs the journal kept (earlier runs too), newest first, as it reads them:
        `owner`'s, or everybody's for None; empty without a journal."""
        return self._journal.finished_jobs(owner, limit) if self._journal is not None else ()

    def find(self, job_id: str) -> Job | None:
        """A queued, running or recently finished job by id."""
        with self._cond:
            return self._known.get(job_id)

    def position(self, job: Job) -> int | None:
        """How many jobs run before this one (0: next, or running); None once it has finished."""
        with self._cond:
            if job in self._running:
                return 0
            for index, other in enumerate(self._pending):
                if other is job:
                    return index + len(self._running)
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

    def cancel(self, job: Job, reason: str = "its client disconnected") -> None:
        """Drop a waiting job from the queue, or interrupt it when it is running: its requester is gone,
        or pressed Interrupt on a shared page (which stops only that user's job)."""
        with self._cond:
            if job in self._pending:
                self._pending.remove(job)
            elif job in self._running:
                job._interrupt.set()
                return
            else:
                return
        self._journal_finished(job, JobStatus.CANCELLED)
        job._finish(JobStatus.CANCELLED, error=Interrupted(f"cancelled: {reason}"))

    def shut_down(self, grace: float) -> threading.Thread | None:
        """Take no more jobs, let the running one finish for up to `grace` seconds, then interrupt it.
        Queued jobs stay queued (their waiters are told: see `closed`). Returns the worker to join."""
        with self._cond:
            self._closed = self._stopping = True
            self._cond.notify_all()
            thread, running, waiting = self._thread, list(self._running), list(self._pending)
        for job in waiting:
            job._notify()
        for current in running:
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
        """The running job (the oldest, when several run)."""
        with self._cond:
            return self._running[0] if self._running else None

    def pending(self) -> list[Job]:
        """Jobs still waiting, in the order they will run."""
        with self._cond:
            return list(self._pending)

    def interrupt(self) -> bool:
        """Ask the running job(s) to stop; False when none is running."""
        return self._flag_current(lambda job: job._interrupt.set())

    def skip(self) -> bool:
        """Ask the running job(s) to end their current batch; False when none is running."""
        return self._flag_current(lambda job: job._skip.set())

    def skip_job(self, job: Job) -> None:
        """End one running job's current batch (nothing for a job that is not running)."""
        with self._cond:
            if job in self._running:
                job._skip.set()

    def progress(self) -> Progress:
        job = self.current()
        return job.progress() if job is not None else Progress(0.0, 0.0, idle_state(), None)

    def _flag_current(self, action: Callable[[Job], None]) -> bool:
        with self._cond:
            for job in self._running:
                action(job)
            return bool(self._running)

    def _work(self) -> None:
        """Start the jobs in turn: each runs on a thread of its own, the next once the running ones are
        done, or at once when `beside` lets it (asked again every BESIDE_POLL seconds: what frees a
        place, e.g. an idle worker, is not the queue's)."""
        while True:
            with self._cond:
                while not self._stopping and not self._next_may_start():
                    self._cond.wait(BESIDE_POLL if self._pending and self._running else None)
                if self._stopping:
                    while self._serving:  # stop() returns once the running jobs have finished
                        self._cond.wait()
                    self._thread = None  # under the lock, so a concurrent start() makes a new worker
                    return
                job = self._pending.popleft()
                self._running.append(job)
                self._serving += 1
                job._begin()
                if self._journal is not None and job.durable:
                    self._journal.started(job)
            threading.Thread(target=self._serve, args=(job,), name=f"job-{job.id}", daemon=True).start()

    def _next_may_start(self) -> bool:
        """Under the lock: a job waits, and nothing runs or `beside` lets it start beside what does."""
        if not self._pending:
            return False
        return not self._running or self.beside(list(self._running), next(iter(self._pending)))

    def _serve(self, job: Job) -> None:
        outcome = self._run(job)
        with self._cond:
            self._running.remove(job)  # before waking waiters, so they never see a finished job as current
            self._cond.notify_all()
        self._journal_finished(job, outcome[0], outcome[2])
        job._finish(*outcome)
        with self._cond:
            self._serving -= 1
            self._cond.notify_all()

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
