"""Issue 21 #7 and #9: the control routes (progress, interrupt, skip) answer at once however many
generation requests wait, because waiting requests hold no threadpool thread (they await the job on
the event loop); admission control (429 beyond the queue limits), cancelling the jobs of clients that
went away, and no echo of unknown request fields."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import make_data_dir
from tests.security.servers import served
from webui.core.params import Txt2Img
from webui.services.job import Job, JobStatus

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]
SMALL = {"steps": 1, "width": 64, "height": 64, "sampler_name": "Euler"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, tiny_sd1_file: Path) -> Iterator[tuple[Any, str]]:
    data = make_data_dir(tmp_path_factory.mktemp("load"), tiny_sd1_file)
    with served(data, "--nowebui", load_model=True) as (app, url, _):
        yield app, url


def until(condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def hold_worker(app: Any) -> Job:
    """A long job on the worker (interrupted by the test), so the requests after it wait in the queue."""
    job = app.submit(Txt2Img(prompt="hold", n_iter=100, steps=150, width=64, height=64), save_images=False)
    until(lambda: job.status is JobStatus.RUNNING)
    return job


def timed(call: Callable[[], requests.Response]) -> float:
    start = time.perf_counter()
    assert call().status_code == 200
    return time.perf_counter() - start


def test_progress_interrupt_and_skip_answer_at_once_with_40_requests_waiting(server):
    app, url = server
    holder = hold_worker(app)
    with ThreadPoolExecutor(40) as pool:
        waiting = [
            pool.submit(requests.post, f"{url}/sdapi/v1/txt2img", json={**SMALL, "seed": i}, timeout=600)
            for i in range(40)
        ]
        until(lambda: len(app.jobs.pending()) == 40)
        times = [timed(lambda: requests.get(f"{url}/sdapi/v1/progress", timeout=30)) for _ in range(5)]
        times.append(timed(lambda: requests.post(f"{url}/sdapi/v1/skip", timeout=30)))
        times.append(timed(lambda: requests.post(f"{url}/sdapi/v1/interrupt", timeout=30)))
        assert max(times) < 0.5, times
        assert holder.wait(60) is not None and holder.status is JobStatus.INTERRUPTED
        answers = [future.result() for future in waiting]
    assert [answer.status_code for answer in answers] == [200] * 40
    seeds = [answer.json()["parameters"]["seed"] for answer in answers]
    assert sorted(seeds) == list(range(40))


def test_queue_limits_answer_429_with_the_limit_named(server):
    app, url = server
    requests.post(f"{url}/sdapi/v1/options", json={"queue_max_jobs_per_client": 3}, timeout=30)
    holder = hold_worker(app)  # queued by the app itself: no client, counts towards the total only
    try:
        with ThreadPoolExecutor(4) as pool:
            queued = [
                pool.submit(requests.post, f"{url}/sdapi/v1/txt2img", json=SMALL, timeout=600)
                for _ in range(3)
            ]
            until(lambda: len(app.jobs.pending()) == 3)
            refused = requests.post(f"{url}/sdapi/v1/txt2img", json=SMALL, timeout=30)
            assert refused.status_code == 429 and "limit 3 per client" in refused.json()["detail"]
            options = {"queue_max_jobs_per_client": 0, "queue_max_jobs": 5}
            requests.post(f"{url}/sdapi/v1/options", json=options, timeout=30)
            queued.append(pool.submit(requests.post, f"{url}/sdapi/v1/txt2img", json=SMALL, timeout=600))
            until(lambda: len(app.jobs.pending()) == 4)
            full = requests.post(f"{url}/sdapi/v1/txt2img", json=SMALL, timeout=30)
            assert full.status_code == 429 and "queue is full" in full.json()["detail"]
            app.jobs.interrupt()
            assert [future.result().status_code for future in queued] == [200] * 4
    finally:
        app.jobs.interrupt()
        holder.wait(60)
        requests.post(
            f"{url}/sdapi/v1/options", json={"queue_max_jobs_per_client": 64, "queue_max_jobs": 256}
        )


def test_the_job_of_a_client_that_went_away_is_cancelled(server):
    app, url = server
    holder = hold_worker(app)
    try:
        gone = threading.Thread(target=_give_up_after, args=(f"{url}/sdapi/v1/txt2img", 1.5))
        gone.start()
        until(lambda: len(app.jobs.pending()) == 1)
        job = app.jobs.pending()[0]
        gone.join(30)
        until(lambda: job.status is JobStatus.CANCELLED, timeout=10)
        assert app.jobs.pending() == []
    finally:
        app.jobs.interrupt()
        holder.wait(60)


def _give_up_after(url: str, seconds: float) -> None:
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.post(url, json=SMALL, timeout=seconds)


def test_unknown_request_fields_are_not_echoed(server):
    _, url = server
    big = "x" * 1_000_000
    answer = requests.post(f"{url}/sdapi/v1/txt2img", json={**SMALL, "zz_unknown": big}, timeout=300)
    assert answer.status_code == 200
    assert "zz_unknown" not in answer.json()["parameters"] and len(answer.content) < 200_000
    assert answer.json()["parameters"]["steps"] == 1  # the known fields still are
