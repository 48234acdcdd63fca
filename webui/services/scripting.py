"""What the generation service needs from the scripts (extensions) around a job, as protocols: the
plugins layer implements them and the App injects them, so services never import plugins."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from PIL import Image

from webui.core.params import GenerationParams
from webui.core.requests import Result

# (image, infotext, seed) → the saved file, or None when the image is not to be saved (cut short)
Saver = Callable[[Image.Image, str, int], Path | None]


@dataclass(frozen=True)
class ProcessingContext:
    """What the generation service lends one job: the engine call (bound to the models and the job) and
    where images go (None: this job does not save)."""

    generate: Callable[[GenerationParams, Any], Result]  # (params, hooks) → Result
    save_image: Saver | None = None
    save_grid: Saver | None = None
    current_model: Callable[[], Any] = lambda: None
    show_image: Callable[[Image.Image, str, int], None] | None = None  # a finished image, shown at once


class ScriptHost(Protocol):
    """The scripts around a generation (webui.plugins.registry.Plugins is one)."""

    def check(self, params: GenerationParams, kind: str) -> None:
        """InvalidParameter now for a script request that cannot run (an unknown script name)."""
        ...

    def process(self, params: GenerationParams, kind: str, context: ProcessingContext) -> Any:
        """Run the job: the chosen script's run() or the normal generation, with every hook."""
        ...

    def notice_model(self, loaded: Any) -> None:
        """A checkpoint was loaded (the extensions' on_model_loaded)."""
        ...

    def model_hooks(self, kind: str) -> list[str]:
        """The extensions and scripts that would act on the model inside a batch of a `kind` job (each
        model pass, the latents, hires fix's second pass): only the process holding the model runs them."""
        ...
