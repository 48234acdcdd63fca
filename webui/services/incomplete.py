"""Images cut short by Interrupt or Skip (A1111's "Save incomplete images" setting): they are shown, but
saved only when the setting is on, and then with a note in their infotext saying where they stopped."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from webui.core.params import GenerationParams
from webui.engine.sampling.run_hooks import HooksAround, RunHooks
from webui.services.job import Job
from webui.services.scripting import Saver

INFOTEXT_KEY = "Incomplete"


class IncompleteImages:
    """Which images of one job were cut short, by seed (A1111 decides the same way: from the job's
    interrupted/skipped state when the image is done)."""

    def __init__(self, job: Job) -> None:
        self._job = job
        self._notes: dict[int, str] = {}  # seed → "interrupted at step 7/20"

    def hooks(self, inner: RunHooks) -> RunHooks:
        """`inner` (the scripts' hooks) with each finished image checked."""
        return _NotingHooks(inner, self)

    def note(self, seed: int) -> None:
        if self._job.interrupted or self._job.skipped:
            state = self._job.progress().state
            how = "interrupted" if self._job.interrupted else "skipped"
            self._notes[seed] = f"{how} at step {state['sampling_step']}/{state['sampling_steps']}"

    def saver(self, save: Saver, save_incomplete: bool) -> Saver:
        """`save` for finished images; an incomplete one is not saved, or is saved marked with
        `save_incomplete`."""

        def save_finished(image: Image.Image, infotext: str, seed: int) -> Path | None:
            note = self._notes.get(seed)
            if note is None:
                return save(image, infotext, seed)
            if not save_incomplete:
                return None
            return save(image, f"{infotext}, {INFOTEXT_KEY}: {note}", seed)

        return save_finished


class _NotingHooks(HooksAround):
    def __init__(self, inner: RunHooks, images: IncompleteImages) -> None:
        super().__init__(inner)
        self._images = images

    def after_image(
        self, params: GenerationParams, image: Image.Image, seed: int
    ) -> tuple[Image.Image, GenerationParams]:
        self._images.note(seed)
        return self._inner.after_image(params, image, seed)
