"""Textual-inversion embeddings: the files in the embeddings folder, read and matched to a model.

A prompt uses an embedding by its file name without extension; conditioning.py puts its vectors in
place of the name's tokens. Formats read (as A1111): safetensors or pickles with `emb_params` (SD1/SD2),
`string_to_param` {'*': vectors} (A1111's .pt), `clip_l` + `clip_g` (SDXL), or one lone tensor (diffusers'
learned_embeds.bin). Pickles are read weights-only.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from webui.core.errors import ModelLoadError
from webui.core.hashing import HashCache
from webui.engine.model_folders import model_files
from webui.engine.sampling.conditioning import CHUNK_LENGTH, TextualInversions

log = logging.getLogger(__name__)

EMBEDDING_SUFFIXES = (".safetensors", ".pt", ".bin")
TI_HASH_LENGTH = 12  # A1111's "TI hashes": the first 12 hex digits of the file's sha256
SINGLE = "clip"  # key of an SD1/SD2 embedding's vectors; SDXL ones have "clip_l" and "clip_g"
SDXL_KEYS = ("clip_l", "clip_g")


@dataclass(frozen=True, eq=False)
class Embedding:
    name: str  # the word used in prompts: the file name without extension
    path: Path
    vectors: Mapping[str, torch.Tensor]  # SINGLE or SDXL_KEYS -> (count, width), on the CPU

    @property
    def count(self) -> int:
        """How many token positions it takes in a prompt."""
        return next(iter(self.vectors.values())).shape[0]


def _read(path: Path) -> Mapping[str, Any]:
    if path.suffix.lower() == ".safetensors":
        try:
            return load_file(path, device="cpu")
        except (SafetensorError, OSError, ValueError) as exc:
            raise ModelLoadError(f"{path.name}: not a valid safetensors file: {exc}") from None
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for bad or code-carrying pickles
        detail = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(f"{path.name}: not a readable weights-only embedding file: {detail}") from exc
    if not isinstance(data, Mapping):
        raise ModelLoadError(f"{path.name}: holds a {type(data).__name__}, not an embedding")
    return data


def _vectors(tensor: Any, path: Path) -> torch.Tensor:
    if not isinstance(tensor, torch.Tensor) or tensor.ndim not in (1, 2) or not tensor.is_floating_point():
        raise ModelLoadError(f"{path.name}: embedding vectors must be a 1-D or 2-D float tensor")
    return tensor.detach().float().reshape(-1, tensor.shape[-1])


def read_embedding(path: str | Path) -> Embedding:
    """The embedding in `path` (ModelLoadError naming the file when it is none)."""
    path = Path(path)
    data = _read(path)
    tensors = {k: v for k, v in data.items() if isinstance(v, torch.Tensor)}
    params = data.get("string_to_param")
    if all(key in data for key in SDXL_KEYS):
        vectors = {key: _vectors(data[key], path) for key in SDXL_KEYS}
        if vectors["clip_l"].shape[0] != vectors["clip_g"].shape[0]:
            raise ModelLoadError(f"{path.name}: clip_l and clip_g hold different numbers of vectors")
    elif "emb_params" in data:
        vectors = {SINGLE: _vectors(data["emb_params"], path)}
    elif isinstance(params, Mapping) and len(params) == 1:
        vectors = {SINGLE: _vectors(next(iter(params.values())), path)}
    elif len(tensors) == 1:
        vectors = {SINGLE: _vectors(next(iter(tensors.values())), path)}
    else:
        raise ModelLoadError(
            f"{path.name}: not a textual-inversion embedding "
            "(no emb_params, string_to_param or clip_l/clip_g tensors)"
        )
    return Embedding(name=path.stem, path=path, vectors=vectors)


class EmbeddingLibrary:
    """The embeddings under `root` (searched recursively), reread when a file changes.

    `for_pipe` rescans (file stats only) on every call, so a file dropped into the folder is usable in
    the next generation without a restart, as in A1111.
    """

    def __init__(self, root: Path | None, hashes: HashCache, shipped: Path | None = None) -> None:
        self.root = root
        self.shipped = shipped  # the install's own folder, searched after `root`
        self.hashes = hashes
        self._loaded: dict[Path, tuple[tuple[int, int], Embedding | None]] = {}  # path -> (stat, embedding)
        self._warned: set[tuple[str, tuple[int, ...]]] = set()

    def refresh(self) -> dict[str, Embedding]:
        """Name -> embedding for every readable file; unreadable ones are skipped with a warning."""
        found: dict[str, Embedding] = {}
        loaded: dict[Path, tuple[tuple[int, int], Embedding | None]] = {}
        for _, path in model_files(self.root, self.shipped):
            if path.suffix.lower() not in EMBEDDING_SUFFIXES:
                continue
            stat = path.stat()
            signature = (stat.st_size, stat.st_mtime_ns)
            known = self._loaded.get(path)
            embedding = known[1] if known and known[0] == signature else self._load(path)
            loaded[path] = (signature, embedding)
            if embedding is None:
                continue
            if embedding.name in found:
                log.warning("Embedding %s: skipped, %s has the same name", path, found[embedding.name].path)
                continue
            found[embedding.name] = embedding
        self._loaded = loaded
        return found

    def _load(self, path: Path) -> Embedding | None:
        try:
            return read_embedding(path)
        except ModelLoadError as exc:
            log.warning("Embedding skipped: %s", exc)
            return None

    def for_pipe(self, pipe: Any) -> TextualInversions:
        """Name -> one (count, width) tensor per text encoder of `pipe`, for the embeddings that fit it.

        An embedding made for another model family (other widths, SD1 vs SDXL) is skipped with a warning
        naming it, once per library and model shape."""
        encoders = [e for e in (pipe.text_encoder, getattr(pipe, "text_encoder_2", None)) if e is not None]
        widths = tuple(encoder.get_input_embeddings().weight.shape[1] for encoder in encoders)
        keys = SDXL_KEYS if len(widths) == 2 else (SINGLE,)
        usable: dict[str, tuple[torch.Tensor, ...]] = {}
        for name, embedding in self.refresh().items():
            vectors = tuple(embedding.vectors.get(key) for key in keys)
            fits = all(v is not None and v.shape[1] == w for v, w in zip(vectors, widths))
            if fits and 0 < embedding.count <= CHUNK_LENGTH:
                usable[name] = vectors
            elif (name, widths) not in self._warned:
                self._warned.add((name, widths))
                have = ", ".join(f"{k} {tuple(v.shape)}" for k, v in embedding.vectors.items())
                log.warning(
                    "Embedding %s (%s) does not fit this model (text widths %s, at most %d vectors): skipped",
                    embedding.path.name,
                    have,
                    widths,
                    CHUNK_LENGTH,
                )
        return usable

    def infotext_hashes(self, names: list[str]) -> str | None:
        """A1111's "TI hashes" value, "name: hash12, …", for the embeddings a prompt used (None if none)."""
        if not names:
            return None
        embeddings = self.refresh()
        parts = [
            f"{name}: {self.hashes.sha256(embeddings[name].path)[:TI_HASH_LENGTH]}"
            for name in names
            if name in embeddings
        ]
        return ", ".join(parts) or None
