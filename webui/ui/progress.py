"""Wait on a queued job while feeding gradio's progress bar (it computes the ETA from our fraction)."""

from __future__ import annotations

import time
from typing import Any

import gradio as gr

from webui.services.jobs import Job, JobStatus

POLL_SECONDS = 0.25


def wait_with_progress(job: Job, progress: gr.Progress) -> Any:
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
        time.sleep(POLL_SECONDS)
    return job.wait()
