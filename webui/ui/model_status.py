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
    """The line, polled each second until a model is in (each page polls until it sees that; after a
    failure, until the user has picked a checkpoint that loads). Then `on_ready()` gives the new values
    of `ready_outputs` (the checkpoint dropdown, which then names the model)."""
    status = gr.Markdown("", visible=False, elem_id="model_status", elem_classes=["model-status"])
    timer = gr.Timer(POLL_SECONDS)

    def tick() -> list[Any]:
        now = services.models.load_status()
        text = {"loading": f"⏳ {now.message}", "failed": f"⚠️ {now.message}"}.get(now.state, "")
        ready = now.state == "ready"
        # the dropdown only once the model is in: never while the user may be choosing another
        outputs = list(on_ready()) if ready else [gr.update() for _ in ready_outputs]
        return [gr.update(value=text, visible=bool(text)), gr.Timer(active=not ready), *outputs]

    timer.tick(tick, outputs=[status, timer, *ready_outputs], show_progress="hidden", queue=False)
