"""A script's ui() built outside the page: its components' default values (the args an API request
leaves out) and their description for /sdapi/v1/script-info. gradio is imported only here, on demand."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any


def scratch() -> AbstractContextManager[Any]:
    """A throwaway gr.Blocks to call ui() functions in (components need one; one for many: each costs)."""
    import gradio as gr

    return gr.Blocks()


def default_value(component: Any) -> Any:
    value = getattr(component, "value", None)
    return value() if callable(value) else value


def arg_info(component: Any) -> dict[str, Any]:
    """A1111's ScriptArg: label, value, minimum, maximum, step, choices (None where not applicable)."""
    choices = getattr(component, "choices", None)
    if choices is not None:
        # gradio keeps (label, value) pairs; the API passes values
        choices = [choice[1] if isinstance(choice, (list, tuple)) else choice for choice in choices]
    return {
        "label": getattr(component, "label", None),
        "value": _plain(default_value(component)),
        "minimum": getattr(component, "minimum", None),
        "maximum": getattr(component, "maximum", None),
        "step": getattr(component, "step", None),
        "choices": choices,
    }


def _plain(value: Any) -> Any:
    """Values JSON can carry; anything else (an image, a file) becomes None."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(item, (str, int, float, bool)) for item in value):
        return list(value)
    return None
