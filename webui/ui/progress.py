"""Wait on a queued job while feeding gradio's progress bar (it computes the ETA from our fraction)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import gradio as gr

from webui.services.jobs import Job, JobStatus

POLL_SECONDS = 0.25


def watch(job: Job, progress: gr.Progress, show_previews: bool = False) -> Iterator[Any]:
    """Feed gradio's progress bar until the job is done; yield each new live preview image on the way
    (the engine makes one every "show_progress_every_n_steps" steps)."""
    last = None
    while not job.done:
        view = job.progress()
        if job.status is JobStatus.QUEUED:
            progress(0.0, desc="Waiting in queue…")
        else:
            state = view.state
            progress(
                view.progress,
                desc=f"Batch {state['job_no'] + 1}/{state['job_count']}, "
                f"step {state['sampling_step']}/{state['sampling_steps']}, ETA {view.eta_relative:.0f} s",
            )
            preview = view.current_preview
            if show_previews and preview is not None and preview is not last:
                last = preview
                yield preview
        time.sleep(POLL_SECONDS)


def wait_with_progress(job: Job, progress: gr.Progress) -> Any:
    for _ in watch(job, progress):
        pass
    return job.wait()
