"""Generation workers through Ray on the demo model: images per second in-process, on one local worker
and on two (each worker one torch thread), and what the queue itself costs per job.

    python bench/bench_workers.py [--images 8] [--steps 20]

Needs requirements-ray.txt. Each figure is one timed job of `--images` 64x64 images (batch count), after a
warm-up job that loads the model everywhere. The queue's own cost: a job through the durable queue
(SQLite write, worker thread hand-off, SQLite updates) with a runner that does nothing, and one Ray call
to an idle worker (what each batch adds), both against the time of one image.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import ray  # noqa: E402
import torch  # noqa: E402

from webui.app import App  # noqa: E402
from webui.core.cmd_args import parse_args  # noqa: E402
from webui.core.params import Txt2Img  # noqa: E402
from webui.core.requests import Request  # noqa: E402
from webui.services.jobs import JobQueue  # noqa: E402
from webui.services.queue_store import QueueStore, StoreJournal  # noqa: E402

DEMO = ROOT / "models" / "Stable-diffusion" / "demo-shapes.safetensors"


def params(images: int, steps: int, seed: int) -> Txt2Img:
    return Txt2Img(
        prompt="a red circle on a blue background", steps=steps, n_iter=images, seed=seed, width=64, height=64
    )


def images_per_second(flags: list[str], images: int, steps: int) -> tuple[float, App]:
    """Images/s of one job on an App started with `flags`, after a warm-up job."""
    app = App(parse_args(["--data-dir", tempfile.mkdtemp(), "--ckpt", str(DEMO), *flags]))
    workers = app.generation.workers
    if workers is not None:
        count = int(flags[flags.index("--workers") + 1])
        workers.pool.wait_ready(600, count=count)
    app.update_options({"torch_threads": 1})  # one torch thread in-process and on each worker
    app.generate(params(2, steps, 1), save_images=False)  # loads the model everywhere
    start = time.perf_counter()
    app.generate(params(images, steps, 100), save_images=False)
    return images / (time.perf_counter() - start), app


def close(app: App) -> None:
    app.jobs.stop()
    if app.generation.workers is not None:
        app.generation.workers.pool.close()


def queue_overhead(jobs: int) -> float:
    """Seconds a job spends in the durable queue itself: submit, SQLite writes, hand-off, finish."""
    with tempfile.TemporaryDirectory() as tmp:
        queue = JobQueue(lambda request, job: None, journal=StoreJournal(QueueStore(Path(tmp) / "q.sqlite3")))
        queue.start()
        times = []
        for index in range(jobs):
            start = time.perf_counter()
            queue.submit(Request(params(1, 20, index))).wait(60)
            times.append(time.perf_counter() - start)
        queue.stop()
    return statistics.median(times)


def ray_call(app: App, calls: int) -> float:
    """Seconds of one call to an idle worker and back (each batch costs one, plus its PNG bytes)."""
    actor = app.generation.workers.pool.ready()[0].actor
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        ray.get(actor.progress.remote())
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    load = os.getloadavg()[0]
    print(f"load average {load:.1f} on {os.cpu_count()} cores; {args.images} images, {args.steps} steps")
    local, app = images_per_second([], args.images, args.steps)
    close(app)
    print(f"in-process: {local:.2f} images/s", flush=True)
    one, app = images_per_second(["--workers", "1"], args.images, args.steps)
    close(app)
    print(f"1 worker:   {one:.2f} images/s ({one / local:.2f}x in-process)", flush=True)
    two, app = images_per_second(["--workers", "2"], args.images, args.steps)
    call = ray_call(app, 50)
    close(app)
    print(f"2 workers:  {two:.2f} images/s ({two / one:.2f}x one worker)", flush=True)
    overhead = queue_overhead(50)
    per_image = 1 / two
    share = overhead / per_image
    print(f"queue per job (SQLite + hand-off): {overhead * 1000:.1f} ms = {share:.1%} of an image")
    print(f"Ray call to a worker:              {call * 1000:.1f} ms = {call / per_image:.1%} of an image")


if __name__ == "__main__":
    main()
