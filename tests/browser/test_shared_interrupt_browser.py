"""On a shared link each user's Interrupt stops only their own job (issue 23's "nobody's job is another's to
stop"): a second browser whose job waits behind the first one's cancels its own job with Interrupt, and the
first job runs on to its end; the first browser's Interrupt then stops its own running job."""

from __future__ import annotations

import functools
import re

import pytest

from tests.browser.helpers import open_ui, playwright, set_number, wait_until
from webui.services.job import JobStatus

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("one_torch_thread")]
TIMEOUT_S = 180
BATCHES = 4


until = functools.partial(wait_until, timeout_s=TIMEOUT_S)


def start_job(page, base_url: str, app, seed: int):
    """Open the UI, queue a txt2img job of BATCHES tiny batches; the job the page shows."""
    open_ui(page, base_url)
    page.locator("#txt2img_prompt textarea").fill("a red circle")
    set_number(page, "txt2img_width", 64)
    set_number(page, "txt2img_height", 64)
    set_number(page, "txt2img_steps", 10)
    set_number(page, "txt2img_batch_count", BATCHES)
    page.locator("#txt2img_seed input").fill(str(seed))
    page.locator("#txt2img_generate").click()
    shown = page.locator("#txt2img_progress [data-job]")
    shown.wait_for(state="attached")
    job = app.jobs.find(shown.get_attribute("data-job") or "")
    assert job is not None
    return job


def test_interrupt_stops_only_the_users_own_job(browser, running_app):
    app, base_url = running_app
    first_user, second_user = browser.new_context(), browser.new_context()
    try:
        first, second = first_user.new_page(), second_user.new_page()
        app.jobs.stop(TIMEOUT_S)  # both jobs wait until both pages show them
        try:
            first_job = start_job(first, base_url, app, 100)
            second_job = start_job(second, base_url, app, 200)
        finally:
            app.jobs.start()
        first_line = first.locator("#txt2img_progress .wui-progress-text")
        playwright.expect(first_line).to_contain_text(re.compile(r"step \d+/10"), timeout=TIMEOUT_S * 1000)
        assert second_job.status is JobStatus.QUEUED  # one worker: it waits behind the first

        second.locator("#txt2img_interrupt").click()
        until(lambda: second_job.done, "the second user's job to leave the queue")
        assert second_job.status is JobStatus.CANCELLED
        playwright.expect(second.locator("#txt2img_progress")).to_contain_text("Interrupted", timeout=60_000)
        playwright.expect(second.locator("#txt2img_generate")).to_be_visible(timeout=60_000)
        assert not first_job.done  # the other user's running job goes on

        playwright.expect(first_line).to_contain_text(f"Batch 2/{BATCHES}", timeout=TIMEOUT_S * 1000)
        first.locator("#txt2img_interrupt").click()
        until(lambda: first_job.done, "the first user's job to stop")
        assert first_job.status is JobStatus.INTERRUPTED and first_job.result.interrupted
        playwright.expect(first.locator("#txt2img_generate")).to_be_visible(timeout=60_000)
    finally:
        app.jobs.start()
        first_user.close()
        second_user.close()
