"""Live previews: the latents of a running generation as a small RGB image, without the VAE.

This is A1111's "Approx cheap": each pixel is a fixed linear mix of the 4 latent channels, so a preview
costs one tiny matrix product and has the latent's size (1/8 of the image's). The engine hands the job a
LatentPreview every step (nothing is computed yet); PreviewReporter turns it into an image only on the
steps the "Live preview display period" setting asks for.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Protocol

import torch
from PIL import Image

# Latent channel → (R, G, B) weights: A1111's "Approx cheap" factors. SD2 shares SD1's VAE latent space.
_SD1_FACTORS = (
    (0.298, 0.207, 0.208),
    (0.187, 0.286, 0.173),
    (-0.158, 0.189, 0.264),
    (-0.184, -0.271, -0.473),
)
_SDXL_FACTORS = (
    (0.3448, 0.4168, 0.4395),
    (-0.1953, -0.0290, 0.0250),
    (0.1074, 0.0886, -0.0163),
    (-0.3730, -0.2499, -0.2088),
)
LATENT_RGB_FACTORS = MappingProxyType({"sd1": _SD1_FACTORS, "sd2": _SD1_FACTORS, "sdxl": _SDXL_FACTORS})


def latent_to_image(latent: torch.Tensor, family: str) -> Image.Image | None:
    """One latent (channels, h, w) as an h×w RGB image; None for a family or channel count without factors."""
    factors = LATENT_RGB_FACTORS.get(family)
    if factors is None or latent.ndim != 3 or latent.shape[0] != len(factors):
        return None
    weights = torch.tensor(factors, dtype=torch.float32)
    rgb = torch.einsum("chw,cr->hwr", latent.detach().float().cpu(), weights)
    pixels = ((rgb + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)
    return Image.fromarray(pixels.numpy(), "RGB")


@dataclass(frozen=True)
class LatentPreview:
    """A preview not made yet: the batch's latents at one step (only the first image is shown)."""

    latents: torch.Tensor  # (batch, channels, h, w)
    family: str

    def image(self) -> Image.Image | None:
        return latent_to_image(self.latents[0], self.family)


def preview_due(step: int, total: int, every: int) -> bool:
    """Whether step `step` of `total` shows a preview: every `every` steps; -1: only a batch's last step;
    0: never (A1111's show_progress_every_n_steps)."""
    if every == -1:
        return step == total
    return every > 0 and step % every == 0


class Reporter(Protocol):
    """The part of a running job (engine.sampling.run_hooks.StepReporter) that previews pass through."""

    def report(self, step: int, total: int, preview: Any | None = None) -> None: ...


class PreviewReporter:
    """Stands in for a job during a run: makes the engine's lazy previews on due steps, forwards the rest."""

    def __init__(self, job: Reporter, every: int) -> None:
        self._job = job
        self.every = every

    def report(self, step: int, total: int, preview: Any | None = None) -> None:
        if isinstance(preview, LatentPreview):
            preview = preview.image() if preview_due(step, total, self.every) else None
        self._job.report(step, total, preview)

    def __getattr__(self, name: str) -> Any:
        # Everything else the engine asks of the job (interrupted, skipped, set_batches, …) is the job's.
        return getattr(self._job, name)
