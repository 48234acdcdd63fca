"""Build the page's Blocks without the FastAPI apps gradio makes for empty Blocks.

Each `gr.Blocks()` calls `queue()` in its constructor, and `queue()` builds a whole FastAPI app for the
Blocks (about 80 routes, each route's signature analysed by FastAPI and pydantic) while the Blocks is
still empty. Leaving the `with` block builds the app again, now with the components, and the one that
serves the page is built a third time by `mount_gradio_app`. The first is always replaced before it can
serve anything; skipping it saves a fifth of building the page (the page's Blocks and each extension
tab's). The apps of Blocks that hold anything are built as before.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from gradio import routes


@contextmanager
def no_apps_for_empty_blocks() -> Iterator[None]:
    """While building the page: `App.create_app` for a Blocks with no children and no events is skipped."""
    create_app = routes.App.create_app

    def create_unless_empty(blocks: Any, *args: Any, **kwargs: Any) -> routes.App | None:
        if not blocks.children and not blocks.fns:  # the constructor's queue(): `with` exit builds it
            return None
        return create_app(blocks, *args, **kwargs)

    routes.App.create_app = staticmethod(create_unless_empty)  # type: ignore[assignment]
    try:
        yield
    finally:
        routes.App.create_app = staticmethod(create_app)  # type: ignore[assignment]
