"""Start-up (issue 24): the FastAPI app gradio builds for each still-empty Blocks is skipped while the
page is built; a Blocks that holds anything gets its app as before, and gradio is left as it was."""

from __future__ import annotations

import gradio as gr
from gradio import routes

from webui.ui.gradio_apps import no_apps_for_empty_blocks


def test_only_blocks_with_content_get_an_app_while_the_page_is_built() -> None:
    original = routes.App.create_app
    with no_apps_for_empty_blocks():
        empty = gr.Blocks()
        with gr.Blocks() as page:
            box = gr.Textbox()
            box.submit(lambda text: text, inputs=box, outputs=box)
    assert empty.app is None  # the constructor's queue() built nothing
    assert isinstance(page.app, routes.App)  # leaving `with` built the app the queue runs events through
    assert page.fns
    assert routes.App.create_app is original
    assert isinstance(gr.Blocks().app, routes.App)  # outside the page build gradio is unchanged
