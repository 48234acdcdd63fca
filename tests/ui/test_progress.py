"""The UI's wait on a queued job: one progress line per change, each new live preview once."""

from __future__ import annotations

import re
import threading
from typing import Any

from PIL import Image

from webui.services.job import Job
from webui.services.jobs import JobQueue
from webui.ui.progress import wait_with_progress, watch


def test_watch_yields_each_new_preview_once_and_the_progress_line() -> None:
    pictures = [Image.new("RGB", (8, 8), colour) for colour in ("red", "green")]
    looked = [threading.Event() for _ in range(4)]

    def run(_: Any, job: Job) -> str:
        job.set_batches(1)
        for step, preview in enumerate([pictures[0], None, pictures[1], None]):
            job.report(step + 1, 4, preview)
            looked[step].wait(10)  # the next step only after the UI has shown this one
        return "done"

    queue = JobQueue(run)
    queue.start()
    try:
        job = queue.submit("x")
        previews, steps = [], []
        for snapshot in watch(job, show_previews=True):
            assert "0/0" not in snapshot.html
            if snapshot.preview is not None:
                previews.append(snapshot.preview)
            if found := re.search(r"step (\d)/4 · \d+% · \d+s elapsed · ETA \d+s", snapshot.html):
                steps.append(int(found[1]))
                looked[int(found[1]) - 1].set()
        assert previews == pictures  # each picture once, in order; steps without one add nothing
        assert job.wait() == "done"
        assert sorted(set(steps)) == [1, 2, 3, 4] and steps == sorted(steps)
        # wait_with_progress (img2img Batch) feeds gradio's bar and hands back the result
        fractions: list[float] = []
        assert wait_with_progress(queue.submit("y"), lambda f, **_: fractions.append(f)) == "done"
    finally:
        queue.stop()
