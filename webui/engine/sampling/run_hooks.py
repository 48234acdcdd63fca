"""What a generation run (engine.sampling.generate) calls out to: the running job (StepReporter) and the
extension points inside the run (RunHooks), which webui.plugins and services implement; the engine knows
neither jobs nor plugins."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from PIL import Image

from webui.core.params import GenerationParams
from webui.engine.sampling.hooks import ModelHook


class StepReporter(Protocol):
    """What the engine needs from a running job (services.job.Job satisfies it)."""

    @property
    def interrupted(self) -> bool: ...

    @property
    def skipped(self) -> bool: ...

    def report(self, step: int, total: int, preview: Any | None = None) -> None: ...

    def set_batches(self, count: int) -> None: ...

    def next_batch(self) -> None: ...


@dataclass(frozen=True)
class FinishedBatch:
    """One batch's final images with their infotexts and seeds, index-aligned."""

    images: tuple[Image.Image, ...]
    infotexts: tuple[str, ...]
    seeds: tuple[int, ...]


class RunHooks(Protocol):
    """Extension points inside a run, in the order a batch meets them."""

    def before_batch(self, params: GenerationParams, batch: int, seeds: Sequence[int]) -> GenerationParams:
        """The params this batch runs with (a script may have changed them)."""
        ...

    def cfg_denoiser(self, pipe: Any, params: GenerationParams, count: int) -> ModelHook | None:
        """A UNet hook for each model pass while a batch of `count` images denoises (Stage.CFG_DENOISER);
        None for none."""
        ...

    def before_hires(self, params: GenerationParams) -> GenerationParams:
        """The params hires fix's second pass runs with (A1111's before_hr)."""
        ...

    def after_sampling(self, params: GenerationParams, latents: torch.Tensor) -> torch.Tensor:
        """The batch's latents once sampling (hires fix included) is over, to be decoded (A1111's
        post_sample)."""
        ...

    def after_image(
        self, params: GenerationParams, image: Image.Image, seed: int
    ) -> tuple[Image.Image, GenerationParams]:
        """Each decoded image: the image to keep and the params its infotext is built from."""
        ...

    def batch_done(self, batch: FinishedBatch) -> None:
        """A batch's images are final (saved and shown from here, so an interrupt or a crash later loses
        nothing of it)."""
        ...


class NoHooks:
    """A run without extensions."""

    def before_batch(self, params: GenerationParams, batch: int, seeds: Sequence[int]) -> GenerationParams:
        return params

    def cfg_denoiser(self, pipe: Any, params: GenerationParams, count: int) -> ModelHook | None:
        return None

    def before_hires(self, params: GenerationParams) -> GenerationParams:
        return params

    def after_sampling(self, params: GenerationParams, latents: torch.Tensor) -> torch.Tensor:
        return latents

    def after_image(
        self, params: GenerationParams, image: Image.Image, seed: int
    ) -> tuple[Image.Image, GenerationParams]:
        return image, params

    def batch_done(self, batch: FinishedBatch) -> None:
        pass


class HooksAround:
    """RunHooks that hand every call on to `inner`: a subclass overrides the calls it adds to."""

    def __init__(self, inner: RunHooks) -> None:
        self._inner = inner

    def before_batch(self, params: GenerationParams, batch: int, seeds: Sequence[int]) -> GenerationParams:
        return self._inner.before_batch(params, batch, seeds)

    def cfg_denoiser(self, pipe: Any, params: GenerationParams, count: int) -> ModelHook | None:
        return self._inner.cfg_denoiser(pipe, params, count)

    def before_hires(self, params: GenerationParams) -> GenerationParams:
        return self._inner.before_hires(params)

    def after_sampling(self, params: GenerationParams, latents: torch.Tensor) -> torch.Tensor:
        return self._inner.after_sampling(params, latents)

    def after_image(
        self, params: GenerationParams, image: Image.Image, seed: int
    ) -> tuple[Image.Image, GenerationParams]:
        return self._inner.after_image(params, image, seed)

    def batch_done(self, batch: FinishedBatch) -> None:
        self._inner.batch_done(batch)
