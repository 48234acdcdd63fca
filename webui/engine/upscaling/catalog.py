"""Find the model upscalers in A1111's folders and keep the last one used loaded.

Every `.pth`/`.pt`/`.safetensors` file in any of the upscaler folders that spandrel recognises as an image
→ image model is listed under its file name, whatever the folder (A1111 1.8+ behaves so). Detecting the
architecture and scale means building the model once; the answer is kept per (path, size, mtime), so a
rescan only reads new or changed files. Files that are refused are logged once and listed by `refused()`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from webui.core.errors import ModelLoadError, ModelNotFound
from webui.engine.upscaling.loading import MODEL_SUFFIXES, load_model
from webui.engine.upscaling.runner import DEFAULT_TILES, SpandrelModel, TileSettings, upscale_image

log = logging.getLogger(__name__)

# A1111's folder names under models/, with the command-line flag that moves each (None: no flag in A1111).
UPSCALER_FOLDERS: Mapping[str, str | None] = {
    "ESRGAN": "--esrgan-models-path",
    "RealESRGAN": "--realesrgan-models-path",
    "SwinIR": None,
    "DAT": "--dat-models-path",
    "HAT": None,
    "ScuNET": None,
    "BSRGAN": "--bsrgan-models-path",
}


@dataclass(frozen=True)
class ModelUpscaler:
    """One usable upscaler file: `name` is its file name without suffix, `architecture` spandrel's name."""

    name: str
    path: Path
    architecture: str
    scale: int
    supports_half: bool


def default_folders(models_dir: Path) -> list[Path]:
    return [models_dir / name for name in UPSCALER_FOLDERS]


def folder_for(models_dir: Path, name: str, flag: str | None, flags: Mapping[str, object]) -> Path:
    """models/`name`, or the folder its command-line flag gives (`flags`: vars() of the parsed flags)."""
    given = flags.get(flag.removeprefix("--").replace("-", "_")) if flag else None
    return Path(str(given)).expanduser().resolve() if given else models_dir / name


def upscaler_folders(models_dir: Path, flags: Mapping[str, object]) -> dict[str, Path]:
    """A1111's upscaler folders by name, with its --*-models-path flags applied."""
    return {name: folder_for(models_dir, name, flag, flags) for name, flag in UPSCALER_FOLDERS.items()}


def _files(folders: Iterable[Path]) -> list[Path]:
    found: list[Path] = []
    for folder in folders:
        if folder.is_dir():
            found += sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in MODEL_SUFFIXES)
    return found


class UpscalerCatalog:
    """The model upscalers in `folders` (scanned on each `scan()`), and the one loaded last. Folders given
    by name (upscaler_folders()) can be asked for by name."""

    def __init__(self, folders: Iterable[Path] | Mapping[str, Path]) -> None:
        self.named = (
            {name: Path(path) for name, path in folders.items()} if isinstance(folders, Mapping) else {}
        )
        self.folders = list(self.named.values()) if self.named else [Path(folder) for folder in folders]
        self._detected: dict[tuple[Path, int, int], ModelUpscaler | str] = {}
        self._loaded: tuple[Path, int, SpandrelModel] | None = None

    def _detect(self, path: Path) -> ModelUpscaler | str:
        stat = path.stat()
        key = (path, stat.st_size, stat.st_mtime_ns)
        if key not in self._detected:
            try:
                model = load_model(path)
            except ModelLoadError as exc:
                log.warning("Upscaler file skipped: %s", exc)
                self._detected[key] = str(exc)
            else:
                self._detected[key] = ModelUpscaler(
                    path.stem, path, model.architecture.name, model.scale, model.supports_half
                )
        return self._detected[key]

    def scan(self) -> list[ModelUpscaler]:
        """The recognised files, in folder order then by name; a name seen twice gets its folder added."""
        models: list[ModelUpscaler] = []
        names: set[str] = set()
        for path in _files(self.folders):
            found = self._detect(path)
            if isinstance(found, ModelUpscaler):
                if found.name in names:
                    found = ModelUpscaler(
                        f"{found.name} ({path.parent.name})",
                        path,
                        found.architecture,
                        found.scale,
                        found.supports_half,
                    )
                names.add(found.name)
                models.append(found)
        return models

    def in_folder(self, name: str) -> list[ModelUpscaler]:
        """The recognised files of the folder called `name` (e.g. "RealESRGAN"); none when not named."""
        folder = self.named.get(name)
        return [model for model in self.scan() if model.path.parent == folder]

    def refused(self) -> dict[Path, str]:
        """The files of the last scans that are not usable upscalers, with the reason."""
        return {key[0]: reason for key, reason in self._detected.items() if isinstance(reason, str)}

    def get(self, name: str) -> ModelUpscaler:
        models = self.scan()
        for model in models:
            if model.name == name:
                return model
        known = ", ".join(model.name for model in models) or "none found"
        raise ModelNotFound(
            f"upscaler {name!r} not found in {', '.join(map(str, self.folders))} (known: {known})"
        )

    def load(self, model: ModelUpscaler) -> SpandrelModel:
        """The spandrel model of `model`, reusing the last one when it is the same unchanged file."""
        mtime = model.path.stat().st_mtime_ns
        if self._loaded is None or self._loaded[:2] != (model.path, mtime):
            self._loaded = None  # free the previous model before loading the next
            self._loaded = (model.path, mtime, load_model(model.path))
        return self._loaded[2]

    def upscale(
        self,
        name: str,
        image: Image.Image,
        scale: float,
        settings: TileSettings = DEFAULT_TILES,
        *,
        device: torch.device | None = None,
        half: bool = False,
        on_progress: Callable[[int, int], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> Image.Image:
        """`image` upscaled by `scale` with the model upscaler called `name` (see runner.upscale_image)."""
        descriptor = self.load(self.get(name))
        return upscale_image(
            descriptor,
            image,
            scale,
            settings,
            device=device,
            half=half,
            on_progress=on_progress,
            should_stop=should_stop,
        )
