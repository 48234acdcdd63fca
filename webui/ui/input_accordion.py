"""An accordion that is its own on/off switch, as A1111's InputAccordion: the enabling checkbox sits in the
accordion's header, opening the accordion ticks it, closing it unticks it, and a checkbox set any other
way (paste, "send to") opens or closes the accordion.

Both links run in the browser alone (js handlers without a server function): each sets the other side
only when it differs, and a change that arrives from the server is applied at once, so the two cannot
chase each other through a busy queue (an earlier server-side link did on a loaded machine)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import gradio as gr

CHECKBOX_CLASS = "wui-accordion-check"  # style.css puts it in the header of the accordion after it
OPEN_LIKE_CHECKBOX = "(checked) => ({__type__: 'update', open: Boolean(checked)})"


def link(checkbox: gr.Checkbox, accordion: gr.Accordion) -> None:
    """Keep `accordion` open exactly while `checkbox` is ticked, whichever of them the user changes."""
    accordion.expand(None, None, checkbox, js="() => true", queue=False)
    accordion.collapse(None, None, checkbox, js="() => false", queue=False)
    checkbox.change(None, checkbox, accordion, js=OPEN_LIKE_CHECKBOX, queue=False)


@contextmanager
def input_accordion(
    label: str, elem_id: str, make_checkbox: Callable[..., gr.Checkbox]
) -> Iterator[gr.Checkbox]:
    """`with input_accordion("Hires. fix", "txt2img_hr", make) as enable:` builds the accordion, with the
    checkbox `make(**options)` returns in its header (open when the checkbox starts ticked), and puts what
    the block builds inside it."""
    options: dict[str, Any] = {"show_label": False, "container": False, "elem_classes": [CHECKBOX_CLASS]}
    with gr.Column(elem_classes="wui-input-accordion", min_width=0):
        checkbox = make_checkbox(**options)
        with gr.Accordion(label, open=bool(checkbox.value), elem_id=elem_id) as accordion:
            yield checkbox
    link(checkbox, accordion)
