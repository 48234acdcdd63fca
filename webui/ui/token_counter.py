"""The "n/75" token counters beside the prompt boxes, counted the way A1111 counts them."""

from __future__ import annotations

import html
import logging

import gradio as gr

from webui.core.errors import UserError
from webui.services.tokens import TokenCounter, prompt_texts

__all__ = ["TokenCounter", "add_counter", "prompt_texts"]

log = logging.getLogger(__name__)

# Scoped to the counter: small and grey; style.css places it inside its prompt box, top right, as A1111.
_CSS = ".token-counter { text-align: right; font-size: 0.8em; opacity: 0.7; }"


def add_counter(
    counter: TokenCounter, box: gr.Textbox, steps: gr.Slider, elem_id: str, positive: bool
) -> gr.HTML:
    """A counter over `box`'s top right corner (inside a "wui-prompt-box" column), updated as the user
    types (only the latest text is counted) and when the step count changes (prompt editing depends on
    it)."""
    view = gr.HTML(
        "0/75",
        elem_id=elem_id,
        elem_classes="wui-token-counter",
        html_template='<div class="token-counter">${value}</div>',
        css_template=_CSS,
        js_on_load=None,
    )

    def update(prompt: str, step_count: float) -> str:
        try:
            return counter.label(prompt, step_count, positive)
        except UserError as error:  # a prompt still being typed: the counter says why, the page goes on
            log.info("token counter: %s", error)
            return f'<span title="{html.escape(str(error))}">?/75</span>'

    for source in (box, steps):
        source.change(
            update,
            inputs=[box, steps],
            outputs=view,
            trigger_mode="always_last",
            queue=False,
            show_progress="hidden",
        )
    return view
