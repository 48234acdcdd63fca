"""The models/ControlNet folder: its files, named as sd-webui-controlnet names them (`stem [hash]` with
A1111's legacy 8-digit model hash), and the loaded models (LRU).
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from webui.core.errors import ModelNotFound
from webui.engine.checkpoints.loader import LoadedCheckpoint
from webui.engine.controlnet.annotators import Annotators
from webui.engine.controlnet.load import load_controlnet
from webui.engine.model_folders import model_files

if TYPE_CHECKING:
    from diffusers import ControlNetModel

log = logging.getLogger(__name__)

SUFFIXES = (".safetensors", ".pth", ".pt", ".ckpt")  # sd-webui-controlnet's list


def legacy_hash(path: Path) -> str:
    """A1111's old model hash (sha256 of the 64 KiB at 1 MiB, 8 hex digits): sd-webui-controlnet's names."""
    with open(path, "rb") as stream:
        stream.seek(0x100000)
        return hashlib.sha256(stream.read(0x10000)).hexdigest()[:8]


@dataclass(frozen=True)
class ControlNetEntry:
    path: Path
    name: str  # relative path with extension
    model_name: str  # file stem: what the title and the infotext show

    def title(self) -> str:
        return f"{self.model_name} [{legacy_hash(self.path)}]"


class ControlNetLibrary:
    """The ControlNet files under one folder (rescanned on refresh), the loaded ones (LRU, `cache_size`),
    and the folders annotator weights are looked up in (engine.controlnet.preprocessors)."""

    def __init__(
        self,
        root: Path | None,
        annotator_dirs: Sequence[Path] = (),
        cache_size: int = 3,
        shipped: Path | None = None,  # the install's own folder (its demo model), listed after `root`'s
    ) -> None:
        self.root = root
        self.shipped = shipped
        self.annotators = Annotators(annotator_dirs)
        self.cache_size = cache_size
        self._entries: tuple[ControlNetEntry, ...] = ()
        self._cache: OrderedDict[tuple[Any, ...], ControlNetModel] = OrderedDict()
        self._lock = threading.Lock()
        self.refresh()

    def refresh(self) -> None:
        found: dict[str, ControlNetEntry] = {}  # by name: the data dir's file wins over a shipped one
        for folder, path in model_files(self.root, self.shipped):
            # annotator weights (annotators/…) are preprocessor files, not ControlNets
            relative = path.relative_to(folder)
            if path.suffix.lower() in SUFFIXES and relative.parts[0] != "annotators":
                found.setdefault(relative.as_posix(), ControlNetEntry(path, relative.as_posix(), path.stem))
        self._entries = tuple(found.values())

    @property
    def entries(self) -> tuple[ControlNetEntry, ...]:
        return self._entries

    def titles(self) -> list[str]:
        return [entry.title() for entry in self._entries]

    def find(self, wanted: str) -> ControlNetEntry:
        """By title ("name [hash]"), file name, stem (any case, as sd-webui-controlnet) or hash."""
        wanted = wanted.strip()
        plain = re.sub(r" \[[0-9a-fA-F]{8,10}\]$", "", wanted)
        for entry in self._entries:
            if plain.lower() in (name.lower() for name in (entry.name, entry.model_name, entry.path.name)):
                return entry
        for entry in self._entries:
            if wanted.lower() == legacy_hash(entry.path):
                return entry
        known = ", ".join(e.name for e in self._entries) or f"none (put ControlNet files in {self.root})"
        raise ModelNotFound(f"ControlNet model {wanted!r} not found. Available: {known}")

    def load(
        self, entry: ControlNetEntry, target: LoadedCheckpoint, device: torch.device, dtype: torch.dtype
    ) -> ControlNetModel:
        """The model for `target`'s kind of checkpoint, from the cache when the file has not changed."""
        stat = entry.path.stat()
        key = (entry.path, stat.st_size, stat.st_mtime_ns, target.architecture.config_name, device, dtype)
        with self._lock:
            model = self._cache.pop(key, None)
            if model is None:
                log.info("Loading ControlNet %s", entry.name)
                model = load_controlnet(entry.path, target, device, dtype)
            self._cache[key] = model
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
            return model
