"""The queue's finished-job history (what the Queue tab lists): from the durable queue, one owner's or
everybody's, newest first with their saved files, earlier runs included; unfinished jobs are not in it."""

from __future__ import annotations

import threading
from pathlib import Path

from tests.services.test_queue_store import TIMEOUT, recording_runner, request, wait_until
from webui.services.jobs import JobQueue
from webui.services.queue_store import QueueStore, StoreJournal


def test_finished_history_by_owner_newest_first_across_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "queue.sqlite3"
    times = iter(float(n) for n in range(1000))  # every clock read is one second later
    log: list[str] = []
    queue = JobQueue(recording_runner(log), clock=lambda: next(times), journal=StoreJournal(QueueStore(path)))
    queue.start()
    for prompt, owner in (("a1", "user:ann"), ("b1", "user:bob"), ("a2", "user:ann")):
        queue.submit(request(prompt), owner=owner).wait(TIMEOUT)
    queue.stop(TIMEOUT)
    gate = threading.Event()
    later = JobQueue(recording_runner(log, gate), journal=StoreJournal(QueueStore(path)))  # the next run
    later.start()
    waiting = later.submit(request("a3"), owner="user:ann")  # runs (blocked), not finished
    wait_until(lambda: later.current() is waiting)

    ann = later.finished_history("user:ann")
    assert [row.id for row in ann] == [job.id for job in reversed(queue.known()) if job.owner == "user:ann"]
    assert [row.files for row in ann] == [
        (("/out/a2.png", "a2\nSteps: 20"),),
        (("/out/a1.png", "a1\nSteps: 20"),),
    ]
    assert {row.status for row in ann} == {"done"}
    assert [row.owner for row in later.finished_history(None)] == ["user:ann", "user:bob", "user:ann"]
    assert len(later.finished_history(None, limit=1)) == 1
    assert later.finished_history("user:nobody") == []
    gate.set()
    waiting.wait(TIMEOUT)
    assert [row.id for row in later.finished_history("user:ann", limit=1)] == [waiting.id]
    later.stop(TIMEOUT)


def test_no_history_without_a_journal() -> None:
    queue = JobQueue(recording_runner([]))
    assert list(queue.finished_history(None)) == []
