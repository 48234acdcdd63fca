"""The UI's wait on a queued job: progress fractions go to gradio's bar, new live previews are yielded."""

from __future__ import annotations

import threading
from typing import Any

from PIL import Image

from webui.services.jobs import Job, JobQueue
from webui.ui.progress import wait_with_progress, watch


def test_watch_yields_each_new_preview_once_and_feeds_the_progress_bar() -> None:
    pictures = [Image.new("RGB", (8, 8), colour) for colour in ("red", "green")]
    go = [threading.Event() for _ in range(4)]
    seen = [threading.Event() for _ in range(4)]

    def run(_: Any, job: Job) -> str:
        job.set_batches(1)
        for step, preview in enumerate([pictures[0], None, pictures[1], None]):
            go[step].wait(10)
            job.report(step + 1, 4, preview)
            seen[step].set()
        return "done"

    queue = JobQueue(run)
    queue.start()
    try:
        job = queue.submit("x")
        bar: list[float] = []

        def progress(fraction: float, desc: str = "") -> None:
            bar.append(fraction)
            step = sum(event.is_set() for event in seen)
            if step < 4 and not go[step].is_set():
                go[step].set()  # let the job take its next step only after the UI has looked

        previews = list(watch(job, progress, show_previews=True))
        assert previews == pictures  # each picture once, in order; steps without one add nothing
        assert job.wait() == "done"
        assert bar == sorted(bar) and bar[-1] >= 0.5
        # without previews nothing is yielded, and wait_with_progress hands back the result
        assert wait_with_progress(queue.submit("y"), lambda *a, **k: [e.set() for e in go]) == "done"
    finally:
        queue.stop()
