"""Which running job holds which worker: a job's batches run on the workers it holds, a worker with none
of its batches left goes back at once, and the next queued job takes the free ones (services/jobs.py
asks `free_for` before it starts a job beside the running ones)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from webui.core.errors import UserError
from webui.services.workers.pool import Worker, WorkerPool, WorkerState

POLL = 0.25  # seconds between looks for a free worker


class NoWorkers(UserError):
    status_code = 503


class Leases:
    def __init__(self, pool: WorkerPool, wait_for_workers: float) -> None:
        self.pool = pool
        self._wait_for_workers = wait_for_workers  # seconds a job waits while no worker is ready at all
        self._held: dict[str, set[Worker]] = {}  # job id → the workers it holds
        self._changed = threading.Condition()

    def free(self) -> list[Worker]:
        """Ready workers no job holds."""
        with self._changed:
            return self._free()

    def _free(self) -> list[Worker]:
        taken = {worker for workers in self._held.values() for worker in workers}
        return [worker for worker in self.pool.ready() if worker not in taken]

    def free_for(self, running: Sequence[str]) -> bool:
        """Whether a worker is free for one more job beside the `running` ones (job ids): those that
        hold no worker yet count as taking one each."""
        with self._changed:
            return len(self._free()) > sum(1 for job_id in running if job_id not in self._held)

    def take(
        self, job_id: str, count: int, order: Callable[[list[Worker]], list[Worker]], stop: Callable[[], bool]
    ) -> list[Worker]:
        """Up to `count` free workers for the job, first in `order`, once one is free; [] when `stop()`
        says the job was interrupted meanwhile. NoWorkers when none has been ready for a while."""
        deadline = time.monotonic() + self._wait_for_workers
        with self._changed:
            while not (free := self._free()):
                if stop():
                    return []
                if self.pool.ready():  # all busy: one comes free when its job is done
                    deadline = time.monotonic() + self._wait_for_workers
                elif time.monotonic() > deadline:
                    lost = sum(1 for worker in self.pool.workers() if worker.state is WorkerState.LOST)
                    raise NoWorkers(
                        f"No generation worker is running ({lost} lost); start one or restart the server"
                    )
                self._changed.wait(POLL)
            chosen = order(free)[:count]
            self._held.setdefault(job_id, set()).update(chosen)
            return chosen

    def held(self, job_id: str) -> set[Worker]:
        with self._changed:
            return set(self._held.get(job_id, ()))

    def release(self, job_id: str, worker: Worker) -> None:
        """The job has no batch left for `worker`: another job may take it."""
        with self._changed:
            self._held.get(job_id, set()).discard(worker)
            self._changed.notify_all()

    def release_all(self, job_id: str) -> None:
        with self._changed:
            self._held.pop(job_id, None)
            self._changed.notify_all()
