"""Issue 21 #5 and #9 at the queue itself (webui.services.jobs): admission limits, cancelling a waiting
job, and shutting down with a bounded grace period while queued jobs stay queued."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from webui.core.errors import Interrupted
from webui.services.job import AdmissionLimits, Job, JobStatus, QueueFull, ShuttingDown
from webui.services.jobs import JobQueue

TIMEOUT = 10.0


def until_interrupted(params: Any, job: Job) -> Any:
    """A runner that works until it is interrupted (as a long sampling loop does)."""
    while not job.interrupted:
        time.sleep(0.005)
    raise Interrupted("interrupted")


def running(queue: JobQueue, params: Any = "hold", owner: str | None = None) -> Job:
    job = queue.submit(params, owner=owner)
    deadline = time.monotonic() + TIMEOUT
    while job.status is not JobStatus.RUNNING:
        assert time.monotonic() < deadline
        time.sleep(0.005)
    return job


def test_limits_per_owner_and_in_all() -> None:
    limits = AdmissionLimits(total=4, per_owner=2)
    queue = JobQueue(until_interrupted, limits=lambda: limits)
    queue.start()
    try:
        running(queue, owner="a")
        queue.submit(1, owner="a")
        with pytest.raises(QueueFull, match="limit 2 per client"):
            queue.submit(2, owner="a")
        queue.submit(3, owner="b")
        queue.submit(4)  # no owner: counts towards the total only
        with pytest.raises(QueueFull, match="queue is full"):
            queue.submit(5, owner="c")
    finally:
        queue.shut_down(0)
        queue.stop(TIMEOUT)


def test_cancel_drops_a_waiting_job_and_interrupts_a_running_one() -> None:
    queue = JobQueue(until_interrupted)
    queue.start()
    try:
        first = running(queue)
        second = queue.submit("second")
        queue.cancel(second)
        assert second.status is JobStatus.CANCELLED and queue.pending() == []
        with pytest.raises(Interrupted):
            second.wait(0)
        queue.cancel(first)
        first._done.wait(TIMEOUT)
        assert first.status is JobStatus.INTERRUPTED
    finally:
        queue.stop(TIMEOUT)


def test_shut_down_interrupts_after_the_grace_period_and_keeps_queued_jobs() -> None:
    queue = JobQueue(until_interrupted)
    queue.start()
    first = running(queue)
    second = queue.submit("second")
    woken = threading.Event()
    second.add_listener(woken.set)  # the waiter of a queued job is told the queue closed
    start = time.monotonic()
    worker = queue.shut_down(grace=0.3)
    assert woken.wait(TIMEOUT) and queue.closed
    with pytest.raises(ShuttingDown):
        queue.submit("third")
    assert worker is not None
    worker.join(TIMEOUT)
    assert 0.3 <= time.monotonic() - start < 3
    assert first.status is JobStatus.INTERRUPTED
    assert second.status is JobStatus.QUEUED and queue.pending() == [second]
