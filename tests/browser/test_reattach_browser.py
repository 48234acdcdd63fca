"""Reloading the page while a job runs re-attaches to it (A1111's "restore progress", issue 20): the
progress display continues, the finished images and then the final gallery and infotext arrive, once.
Another browser handed the same job id gets nothing: a page only follows its own browser's jobs.

The job worker is stopped while the other browser looks, so the job waits for it; started again, the job
runs on the tiny checkpoint (64², several batches) and the page is reloaded while its first batch runs."""

from __future__ import annotations

import functools
import re

import pytest

from tests.browser.helpers import open_ui, playwright, set_number, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("one_torch_thread")]
TIMEOUT_S = 180
BATCHES = 4
KEY = "webui_job_txt2img"


until = functools.partial(wait_until, timeout_s=TIMEOUT_S)


def stored_job(page) -> str | None:
    return page.evaluate(f"localStorage.getItem({KEY!r})")


def test_reload_during_a_job_follows_it_again_and_only_in_its_own_browser(browser, running_app):
    app, base_url = running_app
    mine, other = browser.new_context(), browser.new_context()
    app.jobs.stop(TIMEOUT_S)
    try:
        page = mine.new_page()
        open_ui(page, base_url)
        page.locator("#txt2img_prompt textarea").fill("a red circle")
        set_number(page, "txt2img_width", 64)
        set_number(page, "txt2img_height", 64)
        set_number(page, "txt2img_steps", 8)
        set_number(page, "txt2img_batch_count", BATCHES)
        page.locator("#txt2img_seed input").fill("777")
        page.locator("#txt2img_generate").click()
        line = page.locator("#txt2img_progress .wui-progress-text")
        playwright.expect(line).to_contain_text("Waiting in queue")
        until(lambda: stored_job(page), "the page to remember its job")
        job = app.jobs.find(stored_job(page) or "")
        assert job is not None and not job.done

        # Another browser that somehow holds the id is not shown the job, and forgets the id.
        stranger = other.new_page()
        open_ui(stranger, base_url)
        stranger.evaluate(f"localStorage.setItem({KEY!r}, {job.id!r})")
        stranger.reload()
        stranger.locator("#txt2img_generate").wait_for()
        until(lambda: stored_job(stranger) is None, "the stranger's page to take the id")

        app.jobs.start()
        running = re.compile(rf"Batch \d/{BATCHES} · step [1-9]")
        playwright.expect(line).to_contain_text(running, timeout=TIMEOUT_S * 1000)

        page.reload()
        page.locator("#txt2img_generate").wait_for(state="attached")
        playwright.expect(line).to_contain_text(running, timeout=60_000)
        assert not job.done  # the reloaded page shows the progress of the running job
        playwright.expect(page.locator("#txt2img_interrupt")).to_be_visible()
        # the images finished so far, while the job still runs
        first_image = page.locator("#txt2img_gallery").get_by_text("Seed 777").first
        playwright.expect(first_image).to_be_attached(timeout=TIMEOUT_S * 1000)
        # the stranger's page, long since loaded, shows nothing of the job
        assert stranger.locator("#txt2img_progress .wui-progress").count() == 0
        assert stranger.locator("#txt2img_gallery img").count() == 0
        assert stranger.locator("#txt2img_generate").is_visible()

        infotext = page.locator("#txt2img_infotext textarea")
        playwright.expect(infotext).to_have_value(re.compile("Seed: 777"), timeout=TIMEOUT_S * 1000)
        last_seed = f"Seed {777 + BATCHES - 1}"
        playwright.expect(page.locator("#txt2img_gallery").get_by_text(last_seed).first).to_be_attached()
        playwright.expect(page.locator("#txt2img_generate")).to_be_visible()
        assert job.done and len(job.result.images) >= BATCHES
        until(lambda: stored_job(page) is None, "the page to forget the shown job")  # results shown once
    finally:
        app.jobs.start()
        mine.close()
        other.close()
