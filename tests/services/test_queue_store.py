"""The durable queue: job_codec round-trips every field of a generation request, the SQLite store keeps
jobs across a restart and refuses files it cannot trust, and the JobQueue serves owners in turn."""

from __future__ import annotations

import dataclasses
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.test_parameter_schema import other_value
from webui.core import schema
from webui.core.control_unit import ControlUnit
from webui.core.params import GenerationParams, Img2Img, Txt2Img
from webui.core.requests import Request
from webui.services import job_codec
from webui.services.generation import OverriddenRequest
from webui.services.job import Job, JobStatus
from webui.services.jobs import JobQueue
from webui.services.queue_store import VERSION, QueueStore, QueueStoreRefused, StoreJournal

TIMEOUT = 10.0


def pixels(image: Image.Image | None) -> Any:
    return None if image is None else (image.mode, image.size, image.tobytes())


def comparable(params: GenerationParams) -> dict[str, Any]:
    """Every dataclass field, images by their pixels."""
    values = {}
    for item in dataclasses.fields(params):
        value = getattr(params, item.name)
        if item.name == "init_images":
            value = [pixels(image) for image in value]
        elif item.name == "mask":
            value = pixels(value)
        elif item.name == "control_units":
            value = [dataclasses.replace(unit, image=None) for unit in value] + [
                pixels(unit.image) for unit in value
            ]
        values[item.name] = value
    return values


@pytest.mark.parametrize("params_type", [Txt2Img, Img2Img], ids=lambda t: t.__name__)
def test_codec_round_trips_every_declared_and_plain_field(params_type: type[GenerationParams]) -> None:
    chosen = {item.name: other_value(item) for item in schema.fields(params_type)}
    plain: dict[str, Any] = {
        "script_name": "x/y/z plot",
        "script_args": (1, "Seed", (1.5, None), ["a", True], {"k": (2, 3)}),
        "alwayson_scripts": (("ControlNet", (True, "canny")),),
        "extra_generation_params": (("Lora hashes", "abc: 123"),),
        "control_units": (
            ControlUnit(module="canny", model="cn", weight=0.5, image=Image.new("RGB", (8, 4), "blue")),
            ControlUnit(enabled=False),
        ),
        "eta": 0.25,
    }
    if params_type is Img2Img:
        plain["init_images"] = (Image.new("RGB", (8, 8), "red"), Image.new("RGBA", (4, 4), (1, 2, 3, 4)))
        plain["mask"] = Image.new("L", (8, 8), 255)
    params = params_type(**chosen, **plain)
    request = Request(params=params, save_images=False)
    for queued in (request, OverriddenRequest(request, (("CLIP_stop_at_last_layers", 2),), False)):
        back = job_codec.loads(job_codec.dumps(queued))
        assert type(back) is type(queued)
        inner = back.request if isinstance(back, OverriddenRequest) else back
        assert type(inner.params) is params_type and inner.save_images is False
        assert comparable(inner.params) == comparable(params)
        assert {item.name: getattr(inner.params, item.name) for item in schema.fields(params_type)} == chosen
        if isinstance(back, OverriddenRequest):
            assert back.options == (("CLIP_stop_at_last_layers", 2),) and back.restore is False


def test_codec_refuses_an_unreadable_row() -> None:
    with pytest.raises(job_codec.CodecError, match="cannot be read"):
        job_codec.loads('{"type": "Os.System", "params": {}, "save_images": true}')


def test_store_writes_version_and_wal(tmp_path: Path) -> None:
    path = tmp_path / "queue.sqlite3"
    QueueStore(path).close()
    db = sqlite3.connect(path)
    assert db.execute("SELECT version FROM schema_version").fetchone() == (VERSION,)
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_corrupt_file_is_refused_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "queue.sqlite3"
    garbage = b"this is not sqlite at all" * 100
    path.write_bytes(garbage)
    with pytest.raises(QueueStoreRefused, match=f"{path}.*not a readable queue database"):
        QueueStore(path)
    assert path.read_bytes() == garbage  # never emptied


def test_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "queue.sqlite3"
    QueueStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE schema_version SET version = ?", (VERSION + 1,))
    with pytest.raises(QueueStoreRefused, match=f"{path} has schema version {VERSION + 1}, newer"):
        QueueStore(path)


def test_foreign_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "queue.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE photos (id INTEGER)")
    with pytest.raises(QueueStoreRefused, match="photos"):
        QueueStore(path)


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def request(prompt: str) -> Request:
    return Request(params=Txt2Img(prompt=prompt))


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "queue.sqlite3"


@pytest.fixture
def queues() -> Iterator[list[JobQueue]]:
    made: list[JobQueue] = []
    yield made
    for queue in made:
        queue.interrupt()
        queue.stop(timeout=TIMEOUT)


def prompt_of(params: Any) -> str:
    return str(params.params.prompt)


def recording_runner(log: list[str], gate: threading.Event | None = None) -> Callable[[Any, Job], str]:
    def run(params: Any, job: Job) -> str:
        if gate is not None:
            gate.wait(TIMEOUT)
        log.append(prompt_of(params))
        job.record_file(f"/out/{prompt_of(params)}.png", f"{prompt_of(params)}\nSteps: 20")
        return prompt_of(params)

    return run


def test_queued_and_running_jobs_run_again_after_a_restart(store_path: Path, queues: list[JobQueue]) -> None:
    gate = threading.Event()
    first_run: list[str] = []
    queue = JobQueue(recording_runner(first_run, gate), journal=StoreJournal(QueueStore(store_path)))
    queues.append(queue)
    queue.start()
    jobs = [queue.submit(request(f"p{n}"), owner="ann") for n in range(5)]
    queue.submit(object(), kind="checkpoint")  # not a generation: stays in memory
    # p0 is running (blocked on the gate) when the process "dies": nothing more is written
    wait_until(lambda: queue.current() is jobs[0])
    second_store = QueueStore(store_path)  # a new process opens the same file
    stored = second_store.unfinished()
    assert [row.id for row in stored] == [job.id for job in jobs]
    assert {row.status for row in stored[1:]} == {"queued"}

    second_run: list[str] = []
    restarted = JobQueue(recording_runner(second_run), journal=StoreJournal(second_store))
    queues.append(restarted)
    restarted.start()
    assert restarted.restore() == 5 and restarted.restore() == 0
    for job in jobs:
        found = restarted.find(job.id)
        assert found is not None and found.owner == "ann"
        assert found.wait(TIMEOUT) == prompt_of(job.params)
    assert second_run == [f"p{n}" for n in range(5)]
    assert second_store.unfinished() == []
    done = second_store.get(jobs[2].id)
    assert done is not None and done.status == "done" and done.progress == 1.0
    assert second_store.files(jobs[2].id) == {0: ("/out/p2.png", "p2\nSteps: 20")}
    gate.set()


def test_owners_take_turns_and_keep_their_own_order(queues: list[JobQueue]) -> None:
    gate = threading.Event()
    log: list[str] = []
    queue = JobQueue(recording_runner(log, gate))
    queues.append(queue)
    queue.start()
    blocker = queue.submit(request("block"), owner="zed")
    wait_until(lambda: queue.current() is blocker)
    long_batch = [queue.submit(request(f"ann{n}"), owner="ann") for n in range(4)]
    single = queue.submit(request("bob0"), owner="bob")
    second = queue.submit(request("bob1"), owner="bob")
    assert [prompt_of(job.params) for job in queue.pending()] == [
        "ann0",
        "bob0",
        "ann1",
        "bob1",
        "ann2",
        "ann3",
    ]
    assert queue.position(single) == 2  # behind the running job and ann0
    gate.set()
    for job in [blocker, *long_batch, single, second]:
        job.wait(TIMEOUT)
    assert log == ["block", "ann0", "bob0", "ann1", "bob1", "ann2", "ann3"]


def test_move_and_cancel_persist(store_path: Path, queues: list[JobQueue]) -> None:
    gate = threading.Event()
    queue = JobQueue(recording_runner([], gate), journal=StoreJournal(QueueStore(store_path)))
    queues.append(queue)
    queue.start()
    running = queue.submit(request("running"), owner="ann")
    wait_until(lambda: queue.current() is running)
    a, b, c = (queue.submit(request(name), owner="ann") for name in "abc")
    other = queue.submit(request("bob"), owner="bob")
    assert queue.move(c, -2)  # c first among ann's waiting jobs
    assert queue.move(other, 5)  # alone among bob's jobs: it stays where it is
    queue.cancel(b)
    assert b.status is JobStatus.CANCELLED
    assert [prompt_of(job.params) for job in queue.pending()] == ["c", "bob", "a"]
    rows = QueueStore(store_path).unfinished()
    assert [row.params for row in rows[1:]] == [job_codec.dumps(job.params) for job in (c, a, other)]
    assert QueueStore(store_path).get(b.id).status == "cancelled"  # type: ignore[union-attr]
    gate.set()
