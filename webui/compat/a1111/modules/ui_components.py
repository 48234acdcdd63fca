"""modules.ui_components: A1111's small layout helpers, made of gradio 6's own components.

Functions rather than subclasses: gradio writes a .pyi file next to the source of every component
subclass it sees defined, which a program must not do to its own package at run time.
"""

from __future__ import annotations

from typing import Any

import gradio as gr


def FormRow(**kwargs: Any) -> gr.Row:  # noqa: N802 - A1111's class names
    return gr.Row(**kwargs)


def FormColumn(**kwargs: Any) -> gr.Column:  # noqa: N802
    return gr.Column(**kwargs)


def FormGroup(**kwargs: Any) -> gr.Group:  # noqa: N802
    return gr.Group(**kwargs)


def ResizeHandleRow(**kwargs: Any) -> gr.Row:  # noqa: N802
    return gr.Row(**kwargs)


def FormHTML(*args: Any, **kwargs: Any) -> gr.HTML:  # noqa: N802
    return gr.HTML(*args, **kwargs)


def ToolButton(
    value: str = "", *args: Any, elem_classes: list[str] | None = None, **kwargs: Any
) -> gr.Button:  # noqa: N802
    """A small button (A1111 styles it with its CSS class `tool`)."""
    return gr.Button(value, *args, elem_classes=["tool", *(elem_classes or [])], **kwargs)


def DropdownMulti(**kwargs: Any) -> gr.Dropdown:  # noqa: N802
    return gr.Dropdown(multiselect=True, **kwargs)


class InputAccordion:
    """A1111's accordion whose open state is an input: `with InputAccordion(False, label="X") as on:`
    puts components inside, and `on` is the checkbox (at the accordion's top here) that says whether
    the section is enabled. Other attributes are the checkbox's."""

    def __init__(
        self, value: bool = False, *, label: str = "", elem_id: str | None = None, **kwargs: Any
    ) -> None:
        accordion_id = f"{elem_id}-accordion" if elem_id else None
        self.accordion = gr.Accordion(label=label, open=bool(value), elem_id=accordion_id)
        with self.accordion:
            self.checkbox = gr.Checkbox(
                value=value, label=f"Enable {label}".strip(), elem_id=elem_id, **kwargs
            )

    def extra(self) -> gr.Row:
        return gr.Row()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.checkbox, name)

    def __enter__(self) -> gr.Checkbox:
        self.accordion.__enter__()
        return self.checkbox

    def __exit__(self, *exc: Any) -> None:
        self.accordion.__exit__(*exc)
