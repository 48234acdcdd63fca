"""Who owns a page's jobs, and which job a reloaded page may follow again (issue 20's restore progress)."""

from __future__ import annotations

from typing import Any

import gradio as gr

from webui.services.jobs import JobQueue
from webui.ui.owners import owner_of
from webui.ui.progress import own_job, watch

BROWSER = "0123456789abcdef0123456789abcdef"


def test_the_browser_cookie_outlives_the_gradio_session_and_a_login_decides_when_there_is_one() -> None:
    first = gr.Request(session_hash="page-1", cookies={"webui_browser": BROWSER})
    reloaded = gr.Request(session_hash="page-2", cookies={"webui_browser": BROWSER})
    assert owner_of(first) == owner_of(reloaded) == f"session:{BROWSER}"
    assert owner_of(gr.Request(session_hash="page-3")) == "session:page-3"  # before the page set it
    malformed = gr.Request(session_hash="page-4", cookies={"webui_browser": "user:admin"})
    assert owner_of(malformed) == "session:page-4"
    login = gr.Request(username="bob", session_hash="page-5", cookies={"webui_browser": BROWSER})
    assert owner_of(login) == "user:bob"
    assert owner_of(None) is None


def test_a_reloaded_page_follows_only_its_owners_job_of_its_tab() -> None:
    def run(_: Any, job: Any) -> str:
        return "done"

    queue = JobQueue(run)  # not started: the jobs wait
    job = queue.submit("params", kind="txt2img", owner="session:mine")
    assert own_job(queue, job.id, "session:mine", "txt2img") is job
    assert own_job(queue, job.id, "session:someone-else", "txt2img") is None
    assert own_job(queue, job.id, None, "txt2img") is None
    assert own_job(queue, job.id, "session:mine", "img2img") is None
    assert own_job(queue, "no-such-job", "session:mine", "txt2img") is None
    assert own_job(queue, "", "session:mine", "txt2img") is None
    # the progress display names the job, so the page can remember it
    assert f'data-job="{job.id}"' in next(iter(watch(job))).html
