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
from tests.upscaler_files import write_gfpgan, write_yunet_standin
from webui.core.params import Txt2Img
from webui.engine.upscaling import face_align
from webui.engine.upscaling.face_detection import DETECTOR_FILE

ray = pytest.importorskip("ray", reason="ray is not installed (pip install -r requirements-ray.txt)")

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CHECKPOINT = Path(__file__).resolve().parents[2] / "models" / "Stable-diffusion" / "demo-shapes.safetensors"
PARAMS = Txt2Img(
    prompt="a red circle on a blue background", steps=8, n_iter=8, seed=4321, width=64, height=64
)
SEEDS = tuple(range(4321, 4329))

# An always-on script with in-batch hooks (off unless its checkbox is given): the head runs them for a
# job on the workers, process_batch before each batch is sent and postprocess_image when it is back.
BATCH_MARKS = """
from PIL import ImageOps
from webui.plugins import api


class BatchMarks(api.Script):
    def title(self):
        return "Batch marks"

    def show(self, is_img2img):
        return api.AlwaysVisible

    def ui(self, is_img2img):
        import gradio as gr
        return [gr.Checkbox(value=False, label="Mark batches")]

    def process_batch(self, p, enabled, *, batch_number, prompts, seeds):
        if enabled:  # each batch its own guidance: the worker must run with it
            p.cfg_scale = 4.0 + batch_number

    def postprocess_image(self, p, pp, enabled):
        if enabled:
            pp.image = ImageOps.mirror(pp.image)
            p.extra_generation_params["Mirrored"] = "yes"
"""
MARKED = PARAMS.replace(n_iter=4, alwayson_scripts=(("Batch marks", (True,)),))

# An on_cfg_denoiser callback acts on the model inside a batch: a job on workers is refused, not run without.
CFG_CALLBACK = """
from webui.plugins import api

api.on_cfg_denoiser(lambda params: None)
"""


# Face restoration runs on the head for a job on the workers: a random-weight GFPGAN and a YuNet-format
# detector that finds one face (10 px between the eyes) in the middle of a 64² picture.
FACES = PARAMS.replace(n_iter=2, restore_faces=True)
LANDMARKS = face_align.FFHQ_TEMPLATE * 0.08 + np.array([11.5, 8.0], np.float32)


@pytest.fixture(scope="module")
def face_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("faces")
    write_gfpgan(folder / "GFPGANv1.4.pth")
    write_yunet_standin(folder / DETECTOR_FILE, 64, LANDMARKS)
    return folder


def data_dir_with(root: Path, name: str, script: str) -> Path:
    folder = root / "extensions" / name / "scripts"
    folder.mkdir(parents=True)
    (folder / f"{name}.py").write_text(script, encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def in_process(
    tmp_path_factory: pytest.TempPathFactory, face_models: Path
) -> dict[str, tuple[list[np.ndarray], tuple[str, ...]]]:
    """The images and infotexts of PARAMS, MARKED and FACES made in-process, as without workers."""
    root = data_dir_with(tmp_path_factory.mktemp("single"), "batch_marks", BATCH_MARKS)
    app = make_app(root, "--ckpt", str(CHECKPOINT), "--gfpgan-models-path", str(face_models))
    made = {}
    try:
        for name, params in (("plain", PARAMS), ("marked", MARKED), ("faces", FACES)):
            result = app.generate(params, save_images=False)
            images = result.images[result.index_of_first_image :]
            made[name] = (
                [np.asarray(image) for image in images],
                result.infotexts[result.index_of_first_image :],
            )
    finally:
        app.jobs.stop()
    return made


@pytest.fixture(scope="module")
def single(
    in_process: dict[str, tuple[list[np.ndarray], tuple[str, ...]]],
) -> tuple[list[np.ndarray], tuple[str, ...]]:
    """The job's images and infotexts made in-process, as without workers."""
    return in_process["plain"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, face_models: Path) -> Iterator[object]:
    """An App whose generations run on two Ray worker actors on this machine."""
    root = data_dir_with(tmp_path_factory.mktemp("cluster"), "batch_marks", BATCH_MARKS)
    faces = ("--gfpgan-models-path", str(face_models))
    app = make_app(root, "--ckpt", str(CHECKPOINT), "--workers", "2", "--api", *faces)
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


def test_two_queued_jobs_run_at_once_on_the_two_workers(cluster, single) -> None:
    """A second job takes the idle worker while the first runs (instead of waiting for it): both run at
    the same time, each on its own worker, and make the images one worker makes."""
    workers = cluster.generation.workers
    workers.made_by.clear()
    first = cluster.submit(PARAMS.replace(n_iter=1))  # seed 4321: image 0 of PARAMS
    second = cluster.submit(PARAMS.replace(n_iter=1, seed=4322))  # image 1
    running_together = False
    deadline = time.monotonic() + 120
    while not (first.done and second.done) and time.monotonic() < deadline:
        answers = ray.get([worker.actor.progress.remote() for worker in workers.pool.ready()])
        running_together |= {answer.job_id for answer in answers if answer} == {first.id, second.id}
        time.sleep(0.02)
    results = [first.wait(60), second.wait(60)]

    assert running_together
    assert sorted(workers.made_by.values()) == [1, 1]  # one job on each worker
    expected_images, expected_texts = single
    for index, result in enumerate(results):
        start = result.index_of_first_image
        assert np.array_equal(np.asarray(result.images[start]), expected_images[index])
        assert result.infotexts[start:] == expected_texts[index : index + 1]


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


def test_restore_faces_runs_on_the_head_for_the_workers_images(cluster, in_process) -> None:
    """The worker's decoded images come back and the head restores their faces before saving, as one
    process does: the same images and infotexts (`Face restoration: GFPGAN`)."""
    result = cluster.generate(FACES, save_images=False)
    images = result.images[result.index_of_first_image :]
    expected_images, expected_texts = in_process["faces"]
    assert [np.asarray(image).tolist() for image in images] == [image.tolist() for image in expected_images]
    assert result.infotexts[result.index_of_first_image :] == expected_texts
    assert all("Face restoration: GFPGAN" in text for text in expected_texts)
    plain = in_process["plain"][0][: len(images)]
    mask = face_align.paste_mask(face_align.alignment(LANDMARKS), 64, 64)
    assert all(np.abs(np.asarray(a, int) - b)[mask > 0.99].mean() > 10 for a, b in zip(images, plain))


def test_the_head_runs_process_batch_and_postprocess_image_for_the_workers(cluster, in_process) -> None:
    """process_batch's change reaches the worker (each batch its own CFG scale) and postprocess_image
    changes the worker's image and adds to its infotext: the images and infotexts one process makes."""
    from webui.core import infotext

    result = cluster.generate(MARKED, save_images=False)
    images = result.images[result.index_of_first_image :]
    texts = result.infotexts[result.index_of_first_image :]
    expected_images, expected_texts = in_process["marked"]
    assert len(images) == 4
    for made, expected in zip(images, expected_images, strict=True):
        assert np.array_equal(np.asarray(made), expected)
    assert [infotext.parse(text) for text in texts] == [infotext.parse(text) for text in expected_texts]
    assert [infotext.parse(text)["CFG scale"] for text in texts] == ["4", "5", "6", "7"]
    assert all(infotext.parse(text)["Mirrored"] == "yes" for text in texts)


def test_a_model_hook_refuses_the_job_naming_its_extension(cluster, tmp_path) -> None:
    """An on_cfg_denoiser callback cannot run on the workers: the job is refused (422), never run
    without it. (A second App on the same cluster: its workers need not start for the check.)"""
    from webui.core.errors import InvalidParameter

    root = data_dir_with(tmp_path, "cfg_probe", CFG_CALLBACK)
    app = make_app(root, "--ckpt", str(CHECKPOINT), "--workers", "2")
    try:
        with pytest.raises(
            InvalidParameter, match=r"act on the model inside a batch.*cfg_probe \(on_cfg_denoiser\)"
        ):
            app.generation.submit(PARAMS)
        assert InvalidParameter.status_code == 422
    finally:
        app.jobs.stop()
        app.generation.workers.pool.close()
