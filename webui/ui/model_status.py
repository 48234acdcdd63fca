"""The status line under the quicksettings while the start-up checkpoint loads in the background:
"Loading model demo-shapes.safetensors… 3 s", then nothing once it is in, or why it failed."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import gradio as gr

if TYPE_CHECKING:
    from webui.services.container import Services

POLL_SECONDS = 1.0


def build_model_status(services: Services, on_ready: Callable[[], Any], ready_outputs: list[Any]) -> None:
    """The line, polled each second while the load runs (each page polls until it sees it end). When the
    load ends, `on_ready()` gives the new values of `ready_outputs` (the checkpoint dropdown)."""
    status = gr.Markdown("", visible=False, elem_id="model_status", elem_classes=["model-status"])
    timer = gr.Timer(POLL_SECONDS)

    def tick() -> list[Any]:
        now = services.models.load_status()
        loading = now.state == "loading"
        text = f"⏳ {now.message}" if loading else (f"⚠️ {now.message}" if now.message else "")
        ready = list(on_ready()) if not loading else [gr.update() for _ in ready_outputs]
        return [gr.update(value=text, visible=bool(text)), gr.Timer(active=loading), *ready]

    timer.tick(tick, outputs=[status, timer, *ready_outputs], show_progress="hidden", queue=False)
