"""Who owns a job queued from the page: the queue's round robin, the Queue tab and re-attaching to a job
after a page reload go by it.

The --gradio-auth user when the page has logins. Else the browser: the random id that
javascript/restore_progress.js keeps in the `webui_browser` cookie, which outlives a reload (gradio's
session_hash does not); gradio's session_hash only until the page has set the cookie. Without logins
nobody is authenticated: the id is as unforgeable as gradio's own session hash (both are random values the
browser chose, never shown to others), enough for keeping one person's jobs apart from another's. Written
as "user:NAME" like the API's owners (webui/api/waiting.py), so one person's UI and API jobs share a turn."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import gradio as gr

if TYPE_CHECKING:
    from webui.services.container import Services

BROWSER_COOKIE = "webui_browser"
# What restore_progress.js writes (128 random bits in hex); any other value is ignored.
BROWSER_ID = re.compile(r"[0-9a-f]{32}")


def owner_of(request: gr.Request | None) -> str | None:
    """The owner for jobs queued by this page event; None outside a page event (a script calling in)."""
    if request is None:
        return None
    if request.username:
        return f"user:{request.username}"
    browser = browser_id(request)
    if browser:
        return f"session:{browser}"
    return f"session:{request.session_hash}" if request.session_hash else None


def browser_id(request: gr.Request) -> str | None:
    """The page's own id from its cookie, when it has a well-formed one."""
    try:
        cookies = request.cookies
    except AttributeError:  # a Request built without the HTTP request (a script calling in)
        return None
    value = cookies.get(BROWSER_COOKIE) if cookies else None
    return value if isinstance(value, str) and BROWSER_ID.fullmatch(value) else None


def is_admin(services: Services, request: gr.Request | None) -> bool:
    """The --queue-admin user, logged in through --gradio-auth: sees and manages everybody's jobs."""
    admin = getattr(services.args, "queue_admin", None)
    return bool(admin) and request is not None and request.username == admin
