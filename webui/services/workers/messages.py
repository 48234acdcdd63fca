"""What travels between the head and a worker: plain, picklable data (images as PNG bytes)."""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image

from webui.core.params import GenerationParams
from webui.engine.sampling.noise import NoiseOptions
from webui.services.options import ModelOptions


@dataclass(frozen=True)
class BatchTask:
    """One batch of a job (params: n_iter 1, its own seeds) with the options the head's settings give."""

    job_id: str
    params: GenerationParams
    batch: int  # its index in the job
    model: ModelOptions
    noise: NoiseOptions
    preview_period: int = 0  # live previews: every N steps, -1 at the batch's end, 0 none (JobOptions)


@dataclass(frozen=True)
class BatchProgress:
    """A running batch as the head polls it: its step and, when one was made since the head's last look,
    the newest live preview (PNG, the latent's size: a few hundred bytes)."""

    job_id: str
    step: int
    steps: int
    preview_number: int  # counts the worker's previews: the head asks for those after the last it has
    preview: bytes | None


@dataclass(frozen=True)
class BatchDone:
    """A batch's images, index-aligned with their infotexts and seeds, and the model that made them."""

    batch: int
    params: GenerationParams  # as the engine carried them out (seed resolved, sampler named)
    images: tuple[bytes, ...]  # PNG
    infotexts: tuple[str, ...]
    seeds: tuple[int, ...]
    subseeds: tuple[int, ...]
    interrupted: bool
    warnings: tuple[str, ...]
    checkpoint: str  # the file name of the checkpoint the worker loaded
    short_hash: str  # its short sha256, which the head compares with its own file's


@dataclass(frozen=True)
class WorkerInfo:
    """A worker as it describes itself."""

    host: str
    device: str
    checkpoint: str | None  # the file name of the loaded checkpoint, if any


def to_png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def from_png(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image
