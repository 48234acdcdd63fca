"""Several jobs at once (JobQueue.beside, which the App sets with generation workers): the next job
starts beside the running ones when `beside` lets it, in the fair order, and waits otherwise."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

from webui.services.job import Job
from webui.services.jobs import JobQueue

TIMEOUT = 10.0


def wait_until(condition: Any) -> bool:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_a_job_starts_beside_the_running_one_only_while_a_place_is_free() -> None:
    places = {"free": 2}  # like idle workers: the queue asks again when they change
    release = threading.Event()
    started: list[str] = []

    def runner(params: Any, job: Job) -> Any:
        started.append(params)
        release.wait(TIMEOUT)
        return params

    def beside(running: Sequence[Job], job: Job) -> bool:
        return len(running) < places["free"]

    queue = JobQueue(runner)
    queue.beside = beside
    try:
        jobs = [
            queue.submit("a1", owner="a"),
            queue.submit("a2", owner="a"),
            queue.submit("b1", owner="b"),
        ]
        queue.start()  # after the three are queued: else a2 could start beside a1 before b1 is submitted
        # owners take turns: a1, then b1 beside it; a2 waits for a place
        assert wait_until(lambda: len(started) == 2)
        assert started == ["a1", "b1"]
        assert queue.position(jobs[0]) == 0 and queue.position(jobs[2]) == 0
        assert queue.position(jobs[1]) == 2  # two jobs run before it
        places["free"] = 3  # a place frees up outside the queue (a worker went idle)
        assert wait_until(lambda: len(started) == 3)
        assert started[2] == "a2"
        release.set()
        assert [job.wait(TIMEOUT) for job in jobs] == ["a1", "a2", "b1"]
    finally:
        release.set()
        queue.stop(timeout=TIMEOUT)


def test_without_beside_jobs_run_one_at_a_time_and_stop_waits_for_the_running_one() -> None:
    running = threading.Semaphore(0)
    overlap: list[int] = []
    active = [0]
    lock = threading.Lock()

    def runner(params: Any, job: Job) -> Any:
        with lock:
            active[0] += 1
            overlap.append(active[0])
        time.sleep(0.05)
        with lock:
            active[0] -= 1
        running.release()
        return params

    queue = JobQueue(runner)
    queue.start()
    jobs = [queue.submit(index) for index in range(3)]
    assert running.acquire(timeout=TIMEOUT)
    queue.stop(timeout=TIMEOUT)
    # stop() came back after the running job had finished (done, its result set)
    finished = [job for job in jobs if job.done]
    assert finished and all(job.wait(0) == job.params for job in finished)
    assert max(overlap) == 1
    queue.start()
    assert [job.wait(TIMEOUT) for job in jobs] == [0, 1, 2]
    queue.stop(timeout=TIMEOUT)
