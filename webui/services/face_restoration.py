"""Face restoration of generated images (A1111's `restore_faces`): each decoded image, before the scripts'
postprocess_image and before it is saved, goes through the restorer the options choose
(`face_restoration_model`, with `code_former_weight`), and its infotext says `Face restoration: <model>`.

A1111 restores when the request asks (`restore_faces`) or, when the request leaves it unset, when the
"Restore faces" option (`face_restoration`) is on; our params are a plain bool, so either turns it on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PIL import Image

from webui.core.errors import InvalidParameter
from webui.core.params import GenerationParams
from webui.engine.sampling.run_hooks import HooksAround, RunHooks
from webui.services.extras import FaceRestorers
from webui.services.settings import Settings

if TYPE_CHECKING:
    import torch

INFOTEXT_KEY = "Face restoration"
NONE = "None"  # face_restoration_model: restore nothing


@dataclass(frozen=True)
class FaceOptions:
    """The options one job restores faces with."""

    always: bool  # face_restoration ("Restore faces" in Settings)
    model: str  # face_restoration_model: "GFPGAN", "CodeFormer" or "None"
    weight: float  # code_former_weight (0 = strongest effect)

    @classmethod
    def from_settings(cls, settings: Settings, overrides: Mapping[str, Any] | None = None) -> FaceOptions:
        def get(name: str) -> Any:
            return (overrides or {}).get(name, settings.get(name))

        return cls(
            bool(get("face_restoration")),
            str(get("face_restoration_model")),
            float(get("code_former_weight")),
        )

    def applies(self, params: GenerationParams) -> bool:
        return (params.restore_faces or self.always) and self.model != NONE


class FaceRestorationService:
    """Restores faces in generated images with `restorers` (None: not available in this build) on
    `device`; the options are read when a job starts."""

    def __init__(
        self, restorers: FaceRestorers | None, settings: Settings, device: torch.device | None = None
    ) -> None:
        self.restorers = restorers
        self.settings = settings
        self.device = device

    def wanted(self, params: GenerationParams, overrides: Mapping[str, Any] | None = None) -> bool:
        """Whether `params` (or the face_restoration option) ask for faces to be restored."""
        return FaceOptions.from_settings(self.settings, overrides).applies(params)

    def check(self, params: GenerationParams, overrides: Mapping[str, Any] | None = None) -> None:
        """InvalidParameter naming the missing file, folder or package when `params` want faces restored
        and the chosen restorer cannot run; called when the job is submitted, before it queues."""
        options = FaceOptions.from_settings(self.settings, overrides)
        if not options.applies(params):
            return
        if self.restorers is None:
            raise InvalidParameter("Not supported here: restore_faces (no face restorers in this build)")
        try:
            self.restorers.check(options.model == "GFPGAN", options.model == "CodeFormer")
        except InvalidParameter as error:
            raise InvalidParameter(f"restore_faces: {error}") from None

    def hooks(self, inner: RunHooks) -> RunHooks:
        """`inner` (the scripts' hooks) with each decoded image's faces restored first, when asked."""
        if self.restorers is None:
            return inner
        return _RestoringHooks(inner, self, FaceOptions.from_settings(self.settings))

    def restore(self, image: Image.Image, options: FaceOptions) -> Image.Image:
        assert self.restorers is not None  # hooks() installs none without restorers
        return self.restorers.restore(image, options.model, 1.0, options.weight, device=self.device)


class _RestoringHooks(HooksAround):
    def __init__(self, inner: RunHooks, service: FaceRestorationService, options: FaceOptions) -> None:
        super().__init__(inner)
        self._service = service
        self._options = options

    def after_image(
        self, params: GenerationParams, image: Image.Image, seed: int
    ) -> tuple[Image.Image, GenerationParams]:
        restoring = self._options.applies(params)
        if restoring:
            image = self._service.restore(image, self._options)
        image, written = self._inner.after_image(params, image, seed)
        # Written on what the scripts hand back, which they build from their own copy of the params.
        if restoring:
            extra = (*written.extra_generation_params, (INFOTEXT_KEY, self._options.model))
            written = written.replace(extra_generation_params=extra)
        elif written.restore_faces:  # the model option is "None": nothing restored, nothing to write
            written = written.replace(restore_faces=False)
        return image, written
