"""The Script base class extensions subclass in their scripts/*.py files (A1111's names and meanings).

A script is either *selectable* (show() returns True: it appears in the "Script" dropdown and, when
chosen, its run() replaces the normal generation) or *always visible* (show() returns AlwaysVisible:
its ui() sits in an accordion and its hooks run on every generation). ui() returns gradio components;
their values come back, in the same order, as the *args of every method below.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PIL import Image

    from webui.plugins.processing import Processed, Processing


class _AlwaysVisible:
    def __repr__(self) -> str:
        return "AlwaysVisible"


# What show() returns for a script whose hooks run on every generation (A1111's scripts.AlwaysVisible).
AlwaysVisible = _AlwaysVisible()


@dataclass
class PostprocessImageArgs:
    """postprocess_image's view of one finished image; assign `image` to replace it."""

    image: Image.Image


class Script:
    """Subclass and override what you need; every method has a harmless default."""

    # Set by the loader: the file the script came from and the extension that holds it.
    filename: Path | None = None
    extension: str = ""
    # (component, infotext key) pairs: pasting an infotext with that key fills the component.
    infotext_fields: list[tuple[Any, str]] | None = None

    def title(self) -> str:
        """The name in the Script dropdown, the accordion and the API (compared case-insensitively)."""
        return type(self).__name__

    def show(self, is_img2img: bool) -> bool | _AlwaysVisible:
        """False: not on this tab; True: in the Script dropdown; AlwaysVisible: hooks run every time."""
        return True

    def ui(self, is_img2img: bool) -> list[Any]:
        """Create gradio components (called inside the page layout); return those whose values you want."""
        return []

    def run(self, p: Processing, *args: Any) -> Processed | None:
        """Selectable scripts: do the generation (usually with process_images(p), maybe several times)
        and return what to show. None: the normal generation runs with the changed p."""
        return None

    def process(self, p: Processing, *args: Any) -> None:
        """Before the generation: read or change p (its params, p.extra_generation_params)."""

    def process_batch(
        self, p: Processing, *args: Any, batch_number: int, prompts: list[str], seeds: list[int]
    ) -> None:
        """Before each batch; params changed on p apply to this batch and the ones after it."""

    def postprocess_image(self, p: Processing, pp: PostprocessImageArgs, *args: Any) -> None:
        """After each image is decoded, before its infotext and saving: replace pp.image to change it."""

    def postprocess(self, p: Processing, processed: Processed, *args: Any) -> None:
        """After all images are generated and saved."""

    def describe(self) -> str:
        return ""

    @property
    def name(self) -> str:
        """The title in lower case, as A1111's API lists scripts."""
        return self.title().lower()
