"""Ordinary user errors in the UI: a toast for the user and one log line, no traceback (gradio prints a
traceback for every gr.Error unless told not to; tracebacks are kept for real bugs)."""

from __future__ import annotations

import logging

import gradio as gr

log = logging.getLogger("webui.ui")


def user_error(error: Exception | str, where: str = "UI") -> gr.Error:
    """The gr.Error to raise for a problem the user can fix (a UserError, a missing input)."""
    log.info("%s: %s", where, error)
    return gr.Error(str(error), print_exception=False)
