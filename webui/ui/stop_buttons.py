"""A generation tab's Interrupt and Skip buttons.

They act on the job the tab shows (its progress display's `data-job`, webui/ui/progress.py), and only when
it is this page's owner's: on a shared link one user's Interrupt never stops another user's job. A job that
still waits leaves the queue; a running one stops as A1111's Interrupt stops it (finished images kept)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import gradio as gr

from webui.ui.owners import owner_of
from webui.ui.progress import own_job

if TYPE_CHECKING:
    from webui.services.jobs import JobQueue


def wire_stop_buttons(jobs: JobQueue, tab: str, interrupt: gr.Button, skip: gr.Button) -> None:
    def interrupt_job(request: gr.Request, job_id: str) -> None:  # no outputs, so no return value
        if (job := own_job(jobs, job_id, owner_of(request), tab)) is not None:
            jobs.cancel(job, "Interrupt pressed before it started")

    def skip_job(request: gr.Request, job_id: str) -> None:
        if (job := own_job(jobs, job_id, owner_of(request), tab)) is not None:
            jobs.skip_job(job)

    shown_job = gr.Textbox(visible=False)  # filled by the click's js step
    shown_job_js = f"() => document.querySelector('#{tab}_progress [data-job]')?.dataset.job ?? ''"
    interrupt.click(interrupt_job, inputs=shown_job, js=shown_job_js, queue=False)
    skip.click(skip_job, inputs=shown_job, js=shown_job_js, queue=False)
