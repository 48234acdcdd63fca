"""A1111's Extras: upscale (plain resizer or model upscaler, with a second upscaler blended in) and restore
faces, for one image, a batch of uploads or every file of a folder. It is model work, so it runs as a
queued job; the result carries A1111's "Postprocess …" infotext and may be saved to outputs/extras-images.
"""

from __future__ import annotations

import io
import os
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from PIL import Image
from PIL.PngImagePlugin import PngInfo

from webui.core import infotext
from webui.core.errors import Interrupted, InvalidParameter
from webui.services.batch import open_image
from webui.services.job import Job
from webui.services.jobs import JobQueue
from webui.services.options import SaveOptions, output_dir
from webui.services.outputs import embed_infotext, normalize_format, read_infotext
from webui.services.settings import Settings
from webui.services.upscalers import ExtrasResize, ModelUpscaling, run_extras, upscale, upscaler_names

if TYPE_CHECKING:
    import torch

    from webui.engine.upscaling.catalog import UpscalerCatalog

# Image.info keys that are format details, not text to carry over to the result.
_NUMBERED = re.compile(r"^(\d+)[-.]")
_FORMAT_KEYS = frozenset({"dpi", "exif", "icc_profile", "transparency", "gamma", "srgb", "chromaticity"})


class FaceRestorers(Protocol):
    """GFPGAN and CodeFormer (webui.engine.upscaling.faces)."""

    def folders(self) -> dict[str, Path]:
        """Each restorer's name and the folder its model file goes in."""

    def check(self, gfpgan: bool, codeformer: bool) -> None:
        """UserError naming the missing file or package when a wanted restorer cannot run."""

    def restore(
        self,
        image: Image.Image,
        model: str,
        visibility: float,
        weight: float = 0.5,
        *,
        device: torch.device | None = None,
    ) -> Image.Image: ...


@dataclass(frozen=True)
class FaceRestoration:
    """A1111's GFPGAN / CodeFormer visibilities (0: off) and CodeFormer weight (0 = strongest effect)."""

    gfpgan_visibility: float = 0.0
    codeformer_visibility: float = 0.0
    codeformer_weight: float = 0.0

    def validate(self) -> None:
        for name in ("gfpgan_visibility", "codeformer_visibility", "codeformer_weight"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise InvalidParameter(f"{name} must be between 0 and 1, got {value}")

    @property
    def active(self) -> bool:
        return self.gfpgan_visibility > 0 or self.codeformer_visibility > 0


@dataclass(frozen=True)
class ExtrasRequest:
    """One queued Extras run. `sources` are images, or files read on the worker (Batch from directory);
    `names` the file names to save under ("" for numbered files)."""

    sources: tuple[Image.Image | Path, ...]
    resize: ExtrasResize
    faces: FaceRestoration = FaceRestoration()
    upscale_first: bool = False
    names: tuple[str, ...] = ()
    save: bool = False
    output_dir: Path | None = None  # None: the "Output directory for images from extras tab" option
    keep_results: bool = True  # A1111's show_extras_results (only honoured for folders, as A1111)


@dataclass(frozen=True)
class ExtrasResult:
    images: tuple[Image.Image, ...]
    infotexts: tuple[str, ...]  # the "postprocessing" text of each image
    paths: tuple[Path, ...] = ()
    warnings: tuple[str, ...] = ()
    interrupted: bool = False

    @property
    def infotext(self) -> str:
        """The last image's text, as A1111 shows under the result."""
        return self.infotexts[-1] if self.infotexts else ""


def postprocess_text(info: dict[str, infotext.Value]) -> str:
    """A1111's "postprocessing" text: `Key: value` pairs, a key alone when its value repeats it."""
    pairs = ((key, infotext.format_value(value)) for key, value in info.items())
    return ", ".join(key if key == text else f"{key}: {infotext.quote(text)}" for key, text in pairs)


def text_chunks(image: Image.Image) -> dict[str, str]:
    """The text an image carries (PNG chunks, the infotext of JPEG/WebP), kept on the Extras result."""
    chunks = {
        key: value
        for key, value in (getattr(image, "text", None) or image.info).items()
        if isinstance(key, str) and isinstance(value, str) and key not in _FORMAT_KEYS
    }
    original = read_infotext(image)
    if original:
        chunks["parameters"] = original
    return chunks


def encode_with_chunks(
    image: Image.Image, chunks: dict[str, str], fmt: str = "png", quality: int = 80
) -> bytes:
    """PNG with every chunk as a text chunk (A1111: the input's parameters, "postprocessing", "extras");
    JPEG and WebP keep the postprocessing text in the EXIF comment as A1111 does."""
    if normalize_format(fmt) != "png":
        return embed_infotext(image, chunks.get("postprocessing", ""), fmt, quality=quality)
    pnginfo = PngInfo()
    for key, value in chunks.items():
        pnginfo.add_text(key, value)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=pnginfo)
    return buffer.getvalue()


def _next_number(folder: Path) -> int:
    """One more than the largest number a file name starts with ("00012.png", "00012-x.png"), 0 if none."""
    numbers = [int(match.group(1)) for path in folder.iterdir() if (match := _NUMBERED.match(path.name))]
    return max(numbers, default=-1) + 1


class ExtrasService:
    """Runs Extras jobs: the model upscalers of `catalog`, the face restorers, on `device`."""

    def __init__(
        self,
        catalog: UpscalerCatalog,
        faces: FaceRestorers | None,
        settings: Settings,
        jobs: JobQueue,
        data_dir: Path,
        device: torch.device | None = None,
        half: bool = False,
    ) -> None:
        self.catalog = catalog
        self.faces = faces
        self.settings = settings
        self.jobs = jobs
        self.data_dir = data_dir
        self.device = device
        self.half = half

    def upscaler_names(self) -> list[str]:
        return upscaler_names(self.catalog)

    def output_dir(self) -> Path:
        return output_dir(self.settings, "extras", self.data_dir)

    def submit(self, request: ExtrasRequest, owner: str | None = None) -> Job:
        """Queue `request` (`owner`'s turn); bad fields fail now, before it takes a place in the queue."""
        if not request.sources:
            raise InvalidParameter("Extras: no image given")
        request.resize.validate(self.upscaler_names())
        request.faces.validate()
        if request.faces.active and self.faces is None:
            raise InvalidParameter(
                "Not supported here: face restoration (gfpgan_visibility, codeformer_visibility)"
            )
        if request.faces.active and self.faces is not None:
            self.faces.check(request.faces.gfpgan_visibility > 0, request.faces.codeformer_visibility > 0)
        return self.jobs.submit(request, kind="extras", owner=owner)

    def process(self, request: ExtrasRequest) -> ExtrasResult:
        result: ExtrasResult = self.submit(request).wait()
        return result

    def _models(self, job: Job | None = None) -> ModelUpscaling:
        from webui.engine.upscaling.runner import TileSettings  # torch loads with the first model job

        tiles = TileSettings(self.settings.get("ESRGAN_tile"), self.settings.get("ESRGAN_tile_overlap"))
        if job is None:
            return ModelUpscaling(self.catalog, tiles, self.device, self.half)
        return ModelUpscaling(
            self.catalog,
            tiles,
            self.device,
            self.half,
            on_progress=lambda done, total: job.report(done, total),
            should_stop=lambda: job.interrupted,
        )

    def upscale(self, image: Image.Image, upscaler: str, scale: float) -> Image.Image:
        """`image` resized by `scale` with any listed upscaler, on the calling thread: for work already
        inside a job (the SD upscale script). The tile options apply."""
        return upscale(image, upscaler, scale, self._models())

    def _restore(
        self, image: Image.Image, faces: FaceRestoration, info: dict[str, infotext.Value]
    ) -> Image.Image:
        if self.faces is None or not faces.active:
            return image
        if faces.gfpgan_visibility > 0:
            image = self.faces.restore(image, "GFPGAN", faces.gfpgan_visibility, device=self.device)
            info["GFPGAN visibility"] = round(faces.gfpgan_visibility, 3)
        if faces.codeformer_visibility > 0:
            image = self.faces.restore(
                image, "CodeFormer", faces.codeformer_visibility, faces.codeformer_weight, device=self.device
            )
            info["CodeFormer visibility"] = round(faces.codeformer_visibility, 3)
            info["CodeFormer weight"] = round(faces.codeformer_weight, 3)
        return image

    def _one(self, image: Image.Image, request: ExtrasRequest, job: Job) -> tuple[Image.Image, str]:
        """One image through the steps in the order asked; returns it with its postprocessing text."""
        chunks = text_chunks(image)
        original = image
        if image.mode not in ("RGB", "RGBA"):
            image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
        info: dict[str, infotext.Value] = {}
        steps: list[Callable[[Image.Image], Image.Image]] = [
            lambda img: self._restore(img, request.faces, info),
            lambda img: self._upscale(img, request.resize, info, job),
        ]
        for step in reversed(steps) if request.upscale_first else steps:
            image = step(image)
        text = postprocess_text(info)
        if text:
            chunks["postprocessing"] = text
        if image is original:  # never change the caller's image
            image = image.copy()
        image.info.clear()
        image.info.update(chunks)
        return image, text

    def _upscale(
        self, image: Image.Image, resize: ExtrasResize, info: dict[str, infotext.Value], job: Job
    ) -> Image.Image:
        result, entries = run_extras(image, resize, self._models(job))
        info.update(entries)
        return result

    def run(self, request: ExtrasRequest, job: Job) -> ExtrasResult:
        """On the job worker: each source in turn; Interrupt stops before the next image (or tile)."""
        job.set_batches(len(request.sources))
        images: list[Image.Image] = []
        texts: list[str] = []
        paths: list[Path] = []
        warnings: list[str] = []
        save = SaveOptions.from_settings(self.settings)
        folder = request.output_dir or self.output_dir()
        for index, source in enumerate(request.sources):
            if index:
                job.next_batch()
            if job.interrupted:
                break
            try:
                image = open_image(source) if isinstance(source, Path) else source
            except InvalidParameter as error:  # one unreadable file of a folder is skipped, as A1111
                warnings.append(str(error))
                continue
            try:
                result, text = self._one(image, request, job)
            except Interrupted:
                break
            if request.save:
                name = request.names[index] if index < len(request.names) else ""
                paths.append(self._save(result, folder, name, save))
            if request.keep_results:
                images.append(result)
                texts.append(text)
        stopped = job.interrupted
        return ExtrasResult(tuple(images), tuple(texts), tuple(paths), tuple(warnings), stopped)

    @staticmethod
    def _save(image: Image.Image, folder: Path, name: str, save: SaveOptions) -> Path:
        """`folder`/NNNNN.ext, or `folder`/NAME.ext for a named file (A1111's "use original name"),
        written whole through a temporary file."""
        folder.mkdir(parents=True, exist_ok=True)
        ext = normalize_format(save.fmt)
        chunks = {
            key: value for key, value in image.info.items() if isinstance(key, str) and isinstance(value, str)
        }
        if "postprocessing" in chunks:
            chunks["extras"] = chunks["postprocessing"]  # A1111 writes both
        data = encode_with_chunks(image, chunks, ext, save.quality)
        temp = folder / f".{uuid.uuid4().hex}.tmp"
        try:
            temp.write_bytes(data)
            target = folder / f"{name or f'{_next_number(folder):05}'}.{ext}"
            os.replace(temp, target)
        finally:
            temp.unlink(missing_ok=True)
        return target
