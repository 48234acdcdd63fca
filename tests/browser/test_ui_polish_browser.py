"""Chromium on a real server: issue 20's small remaining defects. Enqueue says where the job went (and its
errors) in a toast; the Queue tab forgets a selected job once it leaves the list; the layout details are
checked by geometry and computed style."""

from __future__ import annotations

import functools

import pytest

from tests.browser.helpers import open_ui, playwright, wait_until

pytestmark = pytest.mark.browser
TIMEOUT_S = 60


until = functools.partial(wait_until, timeout_s=TIMEOUT_S)


def box(page, selector: str) -> dict:
    found = page.locator(selector).first.bounding_box()
    assert found is not None, f"{selector} is not shown"
    return found


def test_enqueue_says_how_many_jobs_are_ahead_and_shows_errors_as_toasts(browser, running_app):
    app, base_url = running_app
    page = browser.new_page()
    open_ui(page, base_url)
    app.jobs.stop(TIMEOUT_S)  # the jobs wait, so the count ahead holds still
    try:
        for prompt in ("first queued", "second queued"):
            page.locator("#txt2img_prompt textarea").fill(prompt)
            page.locator("#txt2img_enqueue").click()
            until(lambda p=prompt: p in [job.params.params.prompt for job in app.jobs.pending()], prompt)
        playwright.expect(page.get_by_text("Queued: 0 ahead of yours").first).to_be_visible()
        playwright.expect(page.get_by_text("Queued: 1 ahead of yours").first).to_be_visible()
        for job in app.jobs.pending():
            app.jobs.cancel(job)
    finally:
        app.jobs.start()
    page.get_by_role("tab", name="img2img", exact=True).click()
    page.locator("#img2img_enqueue").click()  # no input image
    toast = page.get_by_text("No input image: upload one in the img2img tab").first
    playwright.expect(toast).to_be_visible(timeout=30_000)
    page.close()


def test_a_cancelled_job_is_no_longer_selected_in_the_queue_tab(browser, running_app):
    app, base_url = running_app
    page = browser.new_page()
    open_ui(page, base_url)
    app.jobs.stop(TIMEOUT_S)
    try:
        page.locator("#txt2img_prompt textarea").fill("to be cancelled")
        page.locator("#txt2img_enqueue").click()
        until(lambda: app.jobs.pending(), "the queued job")
        page.get_by_role("tab", name="Queue", exact=True).click()
        cell = page.locator("#queue_jobs .virtual-body [role=gridcell]").filter(has_text="to be cancelled")
        cell.first.click()
        label = page.locator("#queue_selected")
        playwright.expect(label).to_contain_text("to be cancelled")
        page.locator("#queue_cancel").click()
        until(lambda: not app.jobs.pending(), "the job to be cancelled")
        playwright.expect(label).to_have_text("No job selected")
        page.locator("#queue_cancel").click()  # nothing selected any more: says so
        playwright.expect(page.get_by_text("Select one of your jobs in the list first").first).to_be_visible()
    finally:
        app.jobs.start()
    page.close()


@pytest.mark.parametrize("tab", ["txt2img", "img2img"])
def test_enqueue_under_generate_and_no_gap_under_the_negative_prompt(browser, running_app, tab):
    _, base_url = running_app
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    open_ui(page, base_url)
    page.get_by_role("tab", name=tab, exact=True).click()
    generate, enqueue = box(page, f"#{tab}_generate"), box(page, f"#{tab}_enqueue")
    # across the column right under Generate, as tall as Generate, in the look of the secondary buttons
    assert enqueue["x"] == pytest.approx(generate["x"], abs=1)
    assert enqueue["width"] == pytest.approx(generate["width"], abs=1)
    assert enqueue["height"] == pytest.approx(generate["height"], abs=1)
    assert 0 < enqueue["y"] - (generate["y"] + generate["height"]) <= 20
    assert "secondary" in page.locator(f"#{tab}_enqueue").get_attribute("class")
    # the prompt column ends where the toolbar column does: the next section follows the negative prompt
    negative, tools = box(page, f"#{tab}_neg_prompt"), box(page, f"#{tab}_tools")
    negative_bottom = negative["y"] + negative["height"]
    assert negative_bottom == pytest.approx(tools["y"] + tools["height"], abs=4)
    row_bottom = page.locator(f"#{tab}_neg_prompt").evaluate(
        "e => e.closest('.row').getBoundingClientRect().bottom"
    )
    assert row_bottom - negative_bottom <= 4
    page.close()


def test_seed_extra_label_whole_and_settings_search_placeholder(browser, running_app):
    _, base_url = running_app
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    open_ui(page, base_url)
    extra = page.locator("#txt2img_subseed_show")
    # a wider font than the page's (a browser without the page's web font): the label stays whole
    label = extra.locator(".label-text")
    label.evaluate("e => { e.style.fontFamily = 'DejaVu Sans'; e.style.fontSize = '16px'; }")
    text = label.bounding_box()
    outer = extra.bounding_box()
    assert outer["x"] <= text["x"] and text["x"] + text["width"] <= outer["x"] + outer["width"], (text, outer)
    assert text["height"] < 30  # on one line
    assert extra.evaluate("e => e.scrollWidth <= e.clientWidth")  # nothing cut off

    page.get_by_role("tab", name="Settings", exact=True).click()
    search = page.locator("#settings_search textarea, #settings_search input").first
    playwright.expect(search).to_have_attribute("placeholder", "Search settings…")
    playwright.expect(search).to_be_visible()
    show_all = box(page, "#settings_show_all_pages")
    assert show_all["height"] == pytest.approx(box(page, "#settings_submit")["height"], abs=1)  # one line
    page.close()
