"""Who owns a job queued from the page: the queue's round robin and the Queue tab go by it.

The --gradio-auth user when the page has logins, else the browser session (gradio's session_hash: a
reload of the page is a new session). Written as "user:NAME" like the API's owners (webui/api/waiting.py),
so one person's UI and API jobs share a turn."""

from __future__ import annotations

from typing import TYPE_CHECKING

import gradio as gr

if TYPE_CHECKING:
    from webui.services.container import Services


def owner_of(request: gr.Request | None) -> str | None:
    """The owner for jobs queued by this page event; None outside a page event (a script calling in)."""
    if request is None:
        return None
    if request.username:
        return f"user:{request.username}"
    return f"session:{request.session_hash}" if request.session_hash else None


def is_admin(services: Services, request: gr.Request | None) -> bool:
    """The --queue-admin user, logged in through --gradio-auth: sees and manages everybody's jobs."""
    admin = getattr(services.args, "queue_admin", None)
    return bool(admin) and request is not None and request.username == admin
