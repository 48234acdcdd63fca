"""Generation on a real local Ray cluster of two CPU workers (`--workers 2`, one torch thread each) with
the demo model: a batch count split 4+4 makes the images one in-process worker makes, and a worker killed
mid-job loses nothing and duplicates nothing. Skipped only where ray is not installed (CI installs
requirements-ray.txt)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import make_app
from webui.core.params import Txt2Img

ray = pytest.importorskip("ray", reason="ray is not installed (pip install -r requirements-ray.txt)")

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CHECKPOINT = Path(__file__).resolve().parents[2] / "models" / "Stable-diffusion" / "demo-shapes.safetensors"
PARAMS = Txt2Img(
    prompt="a red circle on a blue background", steps=8, n_iter=8, seed=4321, width=64, height=64
)
SEEDS = tuple(range(4321, 4329))


@pytest.fixture(scope="module")
def single(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[np.ndarray], tuple[str, ...]]:
    """The job's images and infotexts made in-process, as without workers."""
    app = make_app(tmp_path_factory.mktemp("single"), "--ckpt", str(CHECKPOINT))
    try:
        result = app.generate(PARAMS, save_images=False)
    finally:
        app.jobs.stop()
    images = result.images[result.index_of_first_image :]
    return [np.asarray(image) for image in images], result.infotexts[result.index_of_first_image :]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """An App whose generations run on two Ray worker actors on this machine."""
    app = make_app(tmp_path_factory.mktemp("cluster"), "--ckpt", str(CHECKPOINT), "--workers", "2", "--api")
    pool = app.generation.workers.pool
    try:
        assert len(pool.wait_ready(240, count=2)) == 2, [w.error for w in pool.workers()]
        yield app
    finally:
        app.jobs.stop()
        pool.close()


def saved_seeds(app: object, since: set[Path]) -> list[int]:
    """The seeds in the names of the images saved since `since` (NNNNN-SEED.png)."""
    folder = app.paths.data_dir / "outputs" / "txt2img-images"
    new = sorted(set(folder.rglob("*.png")) - since)
    return sorted(int(path.stem.split("-")[1]) for path in new)


def pngs(app: object) -> set[Path]:
    return set((app.paths.data_dir / "outputs").rglob("*.png"))


def test_a_batch_count_split_over_two_workers_makes_the_same_images(cluster, single) -> None:
    workers = cluster.generation.workers
    before = pngs(cluster)
    result = cluster.generate(PARAMS)
    images = result.images[result.index_of_first_image :]
    assert result.seeds[result.index_of_first_image :] == SEEDS
    assert sorted(workers.made_by.values()) == [4, 4]  # split 4 + 4
    expected_images, expected_texts = single
    assert len(images) == 8
    for made, expected in zip(images, expected_images):
        assert np.array_equal(np.asarray(made), expected)
    assert result.infotexts[result.index_of_first_image :] == expected_texts
    assert saved_seeds(cluster, before) == list(SEEDS)  # the head saved each image once


def test_progress_and_interrupt_reach_the_workers(cluster) -> None:
    workers = cluster.generation.workers
    workers.made_by.clear()
    job = cluster.submit(PARAMS.replace(steps=30))
    steps_seen = 0
    deadline = time.monotonic() + 120
    while not workers.made_by and time.monotonic() < deadline:  # the workers' steps show on the job
        steps_seen = max(steps_seen, job.progress().state["sampling_step"])
        time.sleep(0.02)
    cluster.jobs.interrupt()
    result = job.wait(120)

    assert 0 < steps_seen <= 30
    assert result.interrupted
    seeds = result.seeds[result.index_of_first_image :]
    assert 0 < len(seeds) < 8 and len(set(seeds)) == len(seeds) and set(seeds) <= set(SEEDS)
    assert [ray.get(worker.actor.progress.remote()) for worker in workers.pool.ready()] == [None, None]


def test_live_previews_come_back_from_the_workers(cluster) -> None:
    """The workers' latent previews reach the job on the head (the UI's and /sdapi/v1/progress's
    current_image), at the live-preview period: every 10 steps by default."""
    workers = cluster.generation.workers
    workers.made_by.clear()
    job = cluster.submit(PARAMS.replace(steps=30, n_iter=2))
    previews = []
    deadline = time.monotonic() + 120
    while not job.done and time.monotonic() < deadline:
        preview = job.progress().current_preview
        if preview is not None and (not previews or preview is not previews[-1]):
            previews.append(preview)
        time.sleep(0.02)
    job.wait(60)

    assert previews, "no live preview came back from the workers"
    # the latent's size: the demo model's VAE has three encoder blocks (two downsamplings): 64 / 4
    assert all(image.size == (16, 16) for image in previews), [image.size for image in previews]
    assert len({image.tobytes() for image in previews}) > 1  # later steps show something else


def test_a_worker_killed_mid_job_loses_no_image_and_duplicates_none(cluster, single) -> None:
    workers = cluster.generation.workers
    workers.made_by.clear()
    before = pngs(cluster)
    job = cluster.submit(PARAMS)
    deadline = time.monotonic() + 120
    while not workers.made_by and time.monotonic() < deadline:  # its first batch is back
        time.sleep(0.02)
    victim = next(w for w in workers.pool.ready() if workers.made_by.get(w.name, 0) < 4)
    made_before_kill = workers.made_by.get(victim.name, 0)
    ray.kill(victim.actor)
    result = job.wait(240)

    assert made_before_kill < 4  # it died with batches to go
    assert victim.state.value == "lost" and victim.error
    assert sum(workers.made_by.values()) == 8
    assert result.seeds[result.index_of_first_image :] == SEEDS and not result.interrupted
    images = result.images[result.index_of_first_image :]
    for made, expected in zip(images, single[0], strict=True):
        assert np.array_equal(np.asarray(made), expected)
    assert saved_seeds(cluster, before) == list(SEEDS)  # none lost, none saved twice


def test_the_api_shows_each_worker_and_the_lost_one(cluster) -> None:
    import requests

    from webui.app import serve_in_thread

    server, thread = serve_in_thread(cluster)
    try:
        port = server.servers[0].sockets[0].getsockname()[1]
        listed = requests.get(f"http://127.0.0.1:{port}/sdapi/v1/workers", timeout=30).json()
    finally:
        server.should_exit = True
        thread.join(10)
    assert isinstance(listed, list), listed
    states = {worker["name"]: worker for worker in listed}
    assert {"worker-1", "worker-2"} <= set(states)
    lost = [worker for worker in listed if worker["state"] == "lost"]
    assert len(lost) == 1 and lost[0]["error"]  # the one killed above, and why
    assert any(w["state"] == "ready" and w["checkpoint"] == CHECKPOINT.name for w in listed)


def test_a_worker_with_another_checkpoint_file_is_refused(cluster) -> None:
    from webui.services.workers.distributed import CheckpointMismatch
    from webui.services.workers.messages import BatchDone

    workers = cluster.generation.workers
    worker = workers.pool.ready()[0]
    done = BatchDone(0, PARAMS, (), (), (), (), False, (), CHECKPOINT.name, "0123456789")
    with pytest.raises(CheckpointMismatch, match=f"{worker.name} has a different file for checkpoint"):
        workers.check_hash(worker, done)
    real = cluster.models.registry.short_hash(cluster.models.find_checkpoint(CHECKPOINT.name))
    workers.check_hash(worker, BatchDone(0, PARAMS, (), (), (), (), False, (), CHECKPOINT.name, real))


def test_restore_faces_is_refused_on_workers_not_ignored(cluster) -> None:
    from webui.core.errors import InvalidParameter

    # the workers run no per-image hooks yet: a request for restored faces must not come back unrestored
    with pytest.raises(InvalidParameter, match="restore_faces does not run on --workers"):
        cluster.generation.submit(PARAMS.replace(restore_faces=True))
