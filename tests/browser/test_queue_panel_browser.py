"""The Queue tab in Chromium (issue 23): two browser sessions queue jobs (Enqueue, Generate) and each sees
only its own, with how many jobs run before each; cancel and move up/down from the tab reorder the real
queue; a finished job's images open in the tab's gallery and Re-run queues it again; with --gradio-auth
the owner is the logged-in user and the --queue-admin user sees everybody's jobs with their prompts.

The job worker is stopped while jobs are queued, so positions hold still; started again, the jobs run on
the tiny checkpoint (64², 1 step)."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.helpers import open_ui, playwright, set_number, wait_until
from tests.conftest import make_app, make_data_dir
from webui.ui.queue_panel import prompt_of

pytestmark = pytest.mark.browser
TIMEOUT_S = 60


until = functools.partial(wait_until, timeout_s=TIMEOUT_S)


def rows(page, elem_id: str) -> list[list[str]]:
    """The body cells of a gradio Dataframe, as the page shows them."""
    return page.locator(f"#{elem_id} .virtual-body [role=row]").evaluate_all(
        "rows => rows.map(row => [...row.querySelectorAll('[role=gridcell]')].map(c => c.innerText.trim()))"
    )


def prompts(page, elem_id: str = "queue_jobs") -> list[str]:
    return [row[4] for row in rows(page, elem_id) if len(row) > 4]


def open_page(context, base_url: str):
    page = context.new_page()
    open_ui(page, base_url)
    set_number(page, "txt2img_width", 64)
    set_number(page, "txt2img_height", 64)
    set_number(page, "txt2img_steps", 1)
    return page


def enqueue(page, prompt: str) -> None:
    page.locator("#txt2img_prompt textarea").fill(prompt)
    page.locator("#txt2img_enqueue").click()


def show_queue(page) -> None:
    page.get_by_role("tab", name="Queue", exact=True).click()


def pick(page, elem_id: str, text: str) -> None:
    page.locator(f"#{elem_id} .virtual-body [role=gridcell]").filter(has_text=text).first.click()


def queued_prompts(app) -> list[str]:
    return [job.params.params.prompt for job in app.jobs.pending()]


@pytest.fixture
def stopped_worker(running_app) -> Iterator[object]:
    """The app with its job worker stopped (jobs wait); started again afterwards."""
    app, _ = running_app
    app.jobs.stop(TIMEOUT_S)
    yield app
    app.jobs.start()


def test_two_sessions_see_their_own_jobs_reorder_cancel_open_and_rerun(browser, running_app, stopped_worker):
    app, base_url = running_app
    first, second = browser.new_context(), browser.new_context()
    try:
        alice, bob = open_page(first, base_url), open_page(second, base_url)
        for prompt in ("alpha one", "alpha two", "alpha three"):
            enqueue(alice, prompt)
            until(lambda p=prompt: p in queued_prompts(app), prompt)
        enqueue(bob, "beta one")
        until(lambda: len(app.jobs.pending()) == 4, "four queued jobs")
        owners = {job.params.params.prompt: job.owner for job in app.jobs.pending()}
        assert owners["alpha one"] == owners["alpha three"] != owners["beta one"]
        assert owners["alpha one"].startswith("session:") and owners["beta one"].startswith("session:")
        # owners take turns: alpha one, beta one, alpha two, alpha three
        assert queued_prompts(app) == ["alpha one", "beta one", "alpha two", "alpha three"]

        show_queue(alice)
        show_queue(bob)
        until(lambda: prompts(alice) == ["alpha one", "alpha two", "alpha three"], "alice's jobs")
        assert [row[0] for row in rows(alice, "queue_jobs")] == ["0", "2", "3"]  # jobs ahead of each
        until(lambda: prompts(bob) == ["beta one"], "bob's job")
        assert rows(bob, "queue_jobs")[0][:2] == ["1", "queued"]
        playwright.expect(bob.locator("#queue_summary")).to_contain_text("4 jobs in the queue")
        playwright.expect(bob.locator("#queue_summary")).to_contain_text("1 ahead of your next job")
        assert "alpha" not in bob.locator("#queue_history").inner_text()

        pick(alice, "queue_jobs", "alpha three")
        playwright.expect(alice.locator("#queue_selected")).to_contain_text("alpha three")
        alice.locator("#queue_move_up").click()
        until(
            lambda: queued_prompts(app) == ["alpha one", "beta one", "alpha three", "alpha two"], "moved up"
        )
        until(lambda: prompts(alice) == ["alpha one", "alpha three", "alpha two"], "the tab's new order")
        pick(alice, "queue_jobs", "alpha one")
        alice.locator("#queue_move_down").click()
        until(lambda: prompts(alice) == ["alpha three", "alpha one", "alpha two"], "moved down")
        pick(alice, "queue_jobs", "alpha two")
        alice.locator("#queue_cancel").click()
        until(lambda: prompts(alice) == ["alpha three", "alpha one"], "cancelled")
        assert "alpha two" not in queued_prompts(app)
        assert queued_prompts(app) == ["alpha three", "beta one", "alpha one"]

        app.jobs.start()
        until(lambda: not app.jobs.pending() and app.jobs.current() is None, "the jobs to run")
        # the tab refreshes on its own timer: wait for all three (alpha one ran last)
        until(
            lambda: {"alpha one", "alpha two", "alpha three"} <= set(prompts(alice, "queue_history")),
            "alice's finished jobs",
        )
        history = {row[4]: row for row in rows(alice, "queue_history")}
        assert set(history) == {"alpha one", "alpha two", "alpha three"}
        assert history["alpha two"][1:3] == ["cancelled", "0"] and history["alpha three"][1:3] == [
            "done",
            "1",
        ]
        assert prompts(alice) == []
        pick(alice, "queue_history", "alpha three")
        image = alice.locator("#queue_gallery img").first
        playwright.expect(image).to_be_visible(timeout=TIMEOUT_S * 1000)
        assert image.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [64, 64]
        infotext = alice.locator("#queue_infotext textarea")
        playwright.expect(infotext).to_have_value(re.compile(r"^alpha three\nSteps: 1, "))

        before = len(app.jobs.known())
        alice.locator("#queue_rerun").click()
        until(lambda: len(app.jobs.known()) > before, "the re-run job")
        again = app.jobs.known()[-1]
        assert again.owner == owners["alpha one"] and again.params.params.prompt == "alpha three"
        again.wait(TIMEOUT_S)

        bob.get_by_role("tab", name="txt2img", exact=True).click()
        bob.locator("#txt2img_prompt textarea").fill("beta generated")
        bob.locator("#txt2img_generate").click()
        playwright.expect(bob.locator("#txt2img_infotext textarea")).to_have_value(
            re.compile("^beta generated"), timeout=TIMEOUT_S * 1000
        )
        made = [job for job in app.jobs.known() if prompt_of(job.params) == "beta generated"]
        assert [job.owner for job in made] == [owners["beta one"]]  # Generate queues as the session too
    finally:
        first.close()
        second.close()


@pytest.fixture(scope="module")
def auth_app(tmp_path_factory: pytest.TempPathFactory, tiny_sd1_file: Path) -> Iterator[tuple[object, str]]:
    """A server with UI logins (alice, bob) where bob is the queue's admin; its worker stopped."""
    from webui.server import serve_in_thread

    data = make_data_dir(tmp_path_factory.mktemp("auth"), tiny_sd1_file)
    app = make_app(data, "--gradio-auth", "alice:pw-a,bob:pw-b", "--queue-admin", "bob")
    app.load_initial_checkpoint()
    server, thread = serve_in_thread(app)
    port = server.servers[0].sockets[0].getsockname()[1]
    app.jobs.stop(TIMEOUT_S)
    yield app, f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def logged_in(browser, base_url: str, user: str, password: str):
    context = browser.new_context()
    answer = context.request.post(f"{base_url}/login", form={"username": user, "password": password})
    assert answer.ok, answer.text()
    return context


def test_with_gradio_auth_the_owner_is_the_user_and_the_admin_sees_everybody(browser, auth_app):
    app, base_url = auth_app
    alice_context = logged_in(browser, base_url, "alice", "pw-a")
    bob_context = logged_in(browser, base_url, "bob", "pw-b")
    try:
        alice = open_page(alice_context, base_url)
        enqueue(alice, "alice's secret prompt")
        until(lambda: len(app.jobs.pending()) == 1, "alice's job")
        (job,) = app.jobs.pending()
        assert job.owner == "user:alice"
        show_queue(alice)
        until(lambda: prompts(alice) == ["alice's secret prompt"], "alice's job in her tab")
        assert "Owner" not in alice.locator("#queue_jobs [role=columnheader]").all_inner_texts()

        bob = open_page(bob_context, base_url)
        show_queue(bob)
        until(lambda: prompts(bob) == ["alice's secret prompt"], "the admin sees alice's job")
        assert rows(bob, "queue_jobs")[0][5] == "user:alice"
        pick(bob, "queue_jobs", "alice's secret prompt")
        bob.locator("#queue_cancel").click()
        until(lambda: job.done, "the admin's cancel")
        assert job.status.value == "cancelled"
    finally:
        alice_context.close()
        bob_context.close()
