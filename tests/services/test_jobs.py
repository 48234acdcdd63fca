import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from webui.core.errors import Interrupted, InvalidParameter
from webui.services.job import Job, JobStatus
from webui.services.jobs import JobQueue

TIMEOUT = 5.0


@pytest.fixture
def make_queue() -> Iterator[Callable[..., JobQueue]]:
    queues: list[JobQueue] = []

    def make(runner: Callable[[Any, Job], Any], **kwargs: Any) -> JobQueue:
        queue = JobQueue(runner, **kwargs)
        queue.start()
        queues.append(queue)
        return queue

    yield make
    for queue in queues:
        queue.interrupt()
        queue.stop(timeout=TIMEOUT)


def test_jobs_run_one_at_a_time_in_submission_order(make_queue: Callable[..., JobQueue]) -> None:
    log: list[tuple[str, Any]] = []
    lock = threading.Lock()

    def slow(params: Any, job: Job) -> Any:
        with lock:
            log.append(("start", params))
        time.sleep(0.02)
        with lock:
            log.append(("end", params))
        return params * 10

    queue = make_queue(slow)
    jobs = [queue.submit(n) for n in range(5)]
    assert [job.wait(TIMEOUT) for job in jobs] == [0, 10, 20, 30, 40]
    assert log == [(event, n) for n in range(5) for event in ("start", "end")]
    assert all(job.status is JobStatus.DONE for job in jobs)
    first, second = jobs[0], jobs[1]
    assert first.created <= first.started <= first.finished <= second.started  # type: ignore[operator]


def test_waiting_jobs_are_pending_until_their_turn(make_queue: Callable[..., JobQueue]) -> None:
    release = threading.Event()
    queue = make_queue(lambda params, job: release.wait(TIMEOUT))
    running = queue.submit("a")
    waiting = [queue.submit("b"), queue.submit("c", kind="img2img")]
    _until(lambda: queue.current() is running)
    assert queue.pending() == waiting
    assert [job.status for job in waiting] == [JobStatus.QUEUED, JobStatus.QUEUED]
    assert running.status is JobStatus.RUNNING
    release.set()
    for job in [running, *waiting]:
        job.wait(TIMEOUT)
    assert queue.pending() == []
    assert waiting[1].kind == "img2img"


def test_a_failing_job_does_not_stop_the_queue(make_queue: Callable[..., JobQueue]) -> None:
    def runner(params: Any, job: Job) -> Any:
        if params == "bad":
            raise RuntimeError("boom")
        if params == "invalid":
            raise InvalidParameter("steps must be between 1 and 150")
        return params.upper()

    queue = make_queue(runner)
    jobs = [queue.submit(p) for p in ("ok", "bad", "invalid", "fine")]
    assert jobs[0].wait(TIMEOUT) == "OK"
    with pytest.raises(RuntimeError, match="boom"):
        jobs[1].wait(TIMEOUT)
    with pytest.raises(InvalidParameter):
        jobs[2].wait(TIMEOUT)
    assert jobs[3].wait(TIMEOUT) == "FINE"
    assert [job.status for job in jobs] == [
        JobStatus.DONE,
        JobStatus.FAILED,
        JobStatus.FAILED,
        JobStatus.DONE,
    ]
    assert isinstance(jobs[1].error, RuntimeError) and jobs[1].result is None


def test_interrupt_reaches_the_running_job_only(make_queue: Callable[..., JobQueue]) -> None:
    started = threading.Event()

    def runner(params: Any, job: Job) -> Any:
        if params == "long":
            started.set()
            deadline = time.monotonic() + TIMEOUT
            while not job.interrupted and time.monotonic() < deadline:
                time.sleep(0.001)
            return "partial" if job.interrupted else "timed out"
        return "complete"

    queue = make_queue(runner)
    assert queue.interrupt() is False  # nothing running yet
    long_job = queue.submit("long")
    next_job = queue.submit("next")
    assert started.wait(TIMEOUT)
    assert queue.interrupt() is True
    assert long_job.wait(TIMEOUT) == "partial"
    assert long_job.status is JobStatus.INTERRUPTED
    assert next_job.wait(TIMEOUT) == "complete"
    assert next_job.status is JobStatus.DONE and not next_job.interrupted


def test_runner_raising_interrupted_ends_the_job_as_interrupted(make_queue: Callable[..., JobQueue]) -> None:
    def runner(params: Any, job: Job) -> Any:
        raise Interrupted()

    job = make_queue(runner).submit(None)
    with pytest.raises(Interrupted):
        job.wait(TIMEOUT)
    assert job.status is JobStatus.INTERRUPTED


def test_skip_ends_one_batch_and_the_job_goes_on(make_queue: Callable[..., JobQueue]) -> None:
    in_first_batch = threading.Event()

    def runner(params: Any, job: Job) -> Any:
        job.set_batches(2)
        steps_done = []
        for batch in range(2):
            if batch:
                job.next_batch()
            for step in range(1, 4):
                if batch == 0:
                    in_first_batch.set()
                    _until(lambda: job.skipped)
                if job.skipped:
                    break
                steps_done.append((batch, step))
        return steps_done

    queue = make_queue(runner)
    job = queue.submit(None)
    assert in_first_batch.wait(TIMEOUT)
    assert queue.skip() is True
    assert job.wait(TIMEOUT) == [(1, 1), (1, 2), (1, 3)]
    assert job.status is JobStatus.DONE


def test_progress_and_eta_follow_reported_steps(make_queue: Callable[..., JobQueue]) -> None:
    now = [1000.0]
    checkpoints = [threading.Event() for _ in range(3)]
    proceed = [threading.Event() for _ in range(3)]

    def runner(params: Any, job: Job) -> Any:
        job.set_batches(2)
        now[0] = 1004.0
        job.report(5, 20)  # batch 1 of 2, a quarter through it: 1/8 of the job after 4 s
        checkpoints[0].set()
        proceed[0].wait(TIMEOUT)
        job.next_batch()
        now[0] = 1018.0
        job.report(10, 20, preview="preview image")  # 3/4 of the job after 18 s
        checkpoints[1].set()
        proceed[1].wait(TIMEOUT)
        job.report(11, 20)  # no new preview: the last one stays
        checkpoints[2].set()
        proceed[2].wait(TIMEOUT)
        return "done"

    queue = make_queue(runner, clock=lambda: now[0])
    idle = queue.progress()
    assert (idle.progress, idle.eta_relative, idle.current_preview) == (0.0, 0.0, None)
    assert idle.state["job_count"] == 0 and idle.state["job"] == ""
    job = queue.submit("params")

    assert checkpoints[0].wait(TIMEOUT)
    view = queue.progress()
    assert view.progress == pytest.approx(1 / 8)
    assert view.eta_relative == pytest.approx(4 * 8 - 4)
    assert view.state["job"] == "Batch 1 out of 2"
    assert (view.state["job_no"], view.state["job_count"]) == (0, 2)
    assert (view.state["sampling_step"], view.state["sampling_steps"]) == (5, 20)
    assert view.state["job_timestamp"] == time.strftime("%Y%m%d%H%M%S", time.localtime(1000.0))
    assert view.current_preview is None
    proceed[0].set()

    assert checkpoints[1].wait(TIMEOUT)
    view = queue.progress()
    assert view.progress == pytest.approx(3 / 4)
    assert view.eta_relative == pytest.approx(18 / 0.75 - 18)
    assert view.state["job"] == "Batch 2 out of 2" and view.state["job_no"] == 1
    assert view.current_preview == "preview image"
    proceed[1].set()

    assert checkpoints[2].wait(TIMEOUT)
    assert queue.progress().current_preview == "preview image"
    proceed[2].set()

    assert job.wait(TIMEOUT) == "done"
    assert job.progress().progress == 1.0
    assert job.progress().eta_relative == 0.0


def test_single_batch_job_is_labelled_by_kind(make_queue: Callable[..., JobQueue]) -> None:
    seen: list[dict[str, Any]] = []

    def runner(params: Any, job: Job) -> Any:
        job.report(1, 4)
        seen.append(job.progress().state)
        return job.progress().progress

    job = make_queue(runner).submit(None, kind="img2img")
    assert job.wait(TIMEOUT) == pytest.approx(0.25)
    assert seen[0]["job"] == "img2img" and seen[0]["job_count"] == 1


def test_wait_times_out_while_the_job_is_queued() -> None:
    queue = JobQueue(lambda params, job: params)  # never started: the job stays queued
    job = queue.submit(1)
    with pytest.raises(TimeoutError, match=job.id):
        job.wait(0.01)
    assert queue.pending() == [job] and job.status is JobStatus.QUEUED


def test_stop_keeps_queued_jobs_for_the_next_start() -> None:
    release = threading.Event()
    queue = JobQueue(lambda params, job: release.wait(TIMEOUT) and params)
    queue.start()
    first = queue.submit("first")
    _until(lambda: queue.current() is first)
    second = queue.submit("second")
    queue.stop(timeout=0)  # asks the worker to stop without waiting for it
    release.set()
    queue.stop(timeout=TIMEOUT)
    assert first.wait(TIMEOUT) == "first"
    assert second.status is JobStatus.QUEUED and queue.pending() == [second]
    queue.start()
    try:
        assert second.wait(TIMEOUT) == "second"
    finally:
        queue.stop(TIMEOUT)


def _until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.001)


def test_cancel_and_skip_of_one_job_leave_the_other_jobs_alone(make_queue: Callable[..., JobQueue]) -> None:
    """What a shared page's Interrupt and Skip do: act on that user's job only."""
    started = threading.Event()

    def runner(params: Any, job: Job) -> Any:
        started.set()
        deadline = time.monotonic() + TIMEOUT
        while not (job.interrupted or job.skipped) and time.monotonic() < deadline:
            time.sleep(0.001)
        return "skipped" if job.skipped else "interrupted" if job.interrupted else "ran out"

    queue = make_queue(runner)
    running, waiting = queue.submit("a", owner="alice"), queue.submit("b", owner="bob")
    assert started.wait(TIMEOUT)
    queue.skip_job(waiting)  # not running: nothing to skip
    queue.cancel(waiting, "Interrupt pressed before it started")
    with pytest.raises(Interrupted, match="cancelled: Interrupt pressed before it started"):
        waiting.wait(TIMEOUT)
    assert waiting.status is JobStatus.CANCELLED
    assert not running.done and not running.interrupted and not running.skipped
    queue.skip_job(running)
    assert running.wait(TIMEOUT) == "skipped"
