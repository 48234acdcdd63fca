"""modules.ui: A1111's page module. Ours is webui/ui; extensions get only the helpers older A1111 kept
here (they moved to modules.ui_common), and any other name fails naming itself."""

from __future__ import annotations

from typing import Any

from webui.compat.a1111.modules.ui_common import create_refresh_button, plaintext_to_html, refresh_symbol

__all__ = ["create_refresh_button", "plaintext_to_html", "refresh_symbol"]


def __getattr__(name: str) -> Any:
    raise AttributeError(
        f"modules.ui has no {name!r} in this web UI's A1111 layer (the page is its own here)"
    )
