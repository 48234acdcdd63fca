"""Scan the models folders into entries the UI and API list (A1111 titles: `name [shorthash]`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from webui.core.errors import ModelNotFound
from webui.core.hashing import SHORT_HASH_LENGTH, HashCache
from webui.engine.model_folders import model_files

CHECKPOINT_SUFFIXES = (".safetensors", ".ckpt")


@dataclass(frozen=True)
class CheckpointEntry:
    path: Path
    name: str  # relative path with extension, e.g. "sub/model.safetensors" (A1111's "filename" title part)
    model_name: str  # name without extension, as written after "Model:" in the infotext

    def title(self, short_hash: str | None) -> str:
        return f"{self.name} [{short_hash}]" if short_hash else self.name


class CheckpointRegistry:
    """The checkpoints found under one folder (then under `shipped`, the install's own: its demo model);
    rescanned on refresh, hashed lazily through the cache."""

    def __init__(
        self, root: Path, hashes: HashCache, extra_files: tuple[Path, ...] = (), shipped: Path | None = None
    ) -> None:
        self.root = root
        self.shipped = shipped
        self.hashes = hashes
        self.extra_files = extra_files  # --ckpt: listed even when it lies outside the folder
        self._entries: tuple[CheckpointEntry, ...] = ()
        self.refresh()

    def refresh(self) -> None:
        found: dict[str, CheckpointEntry] = {}  # by name: the data dir's file wins over a shipped one
        for folder, path in model_files(self.root, self.shipped):
            # <checkpoint>.vae.safetensors beside a checkpoint is its VAE, not another checkpoint.
            is_vae = path.stem.lower().endswith(".vae")
            name = path.relative_to(folder).as_posix()
            if path.suffix.lower() in CHECKPOINT_SUFFIXES and not is_vae:
                found.setdefault(
                    name, CheckpointEntry(path=path, name=name, model_name=name.rsplit(".", 1)[0])
                )
        entries = list(found.values())
        known = {entry.path for entry in entries}
        for path in self.extra_files:
            if path.is_file() and path.resolve() not in known:
                entries.append(CheckpointEntry(path=path.resolve(), name=path.name, model_name=path.stem))
        self._entries = tuple(entries)

    @property
    def entries(self) -> tuple[CheckpointEntry, ...]:
        return self._entries

    def short_hash(self, entry: CheckpointEntry) -> str:
        return self.hashes.short_hash(entry.path)

    def known_sha256(self, entry: CheckpointEntry) -> str | None:
        """The sha256 if already computed: listing never reads gigabytes (A1111 hashes on load)."""
        try:
            return self.hashes.known_sha256(entry.path)
        except OSError:  # removed or renamed since the last scan: still listed, unhashed, until a refresh
            return None

    def known_short_hash(self, entry: CheckpointEntry) -> str | None:
        sha256 = self.known_sha256(entry)
        return sha256[:SHORT_HASH_LENGTH] if sha256 else None

    def title(self, entry: CheckpointEntry) -> str:
        return entry.title(self.known_short_hash(entry))

    def titles(self) -> list[str]:
        return [self.title(entry) for entry in self._entries]

    def find(self, wanted: str) -> CheckpointEntry:
        """Look a checkpoint up by title, file name, model name or hash, as A1111 accepts them."""
        wanted = wanted.strip()
        # The whole text first: a name may itself end in brackets ("model [v2]"); then without " [hash]".
        candidates = [wanted, wanted.rsplit(" [", 1)[0]] if wanted.endswith("]") else [wanted]
        for plain in candidates:
            for entry in self._entries:
                if plain in (entry.name, entry.model_name, entry.path.name, entry.path.stem, str(entry.path)):
                    return entry
        for entry in self._entries:
            sha256 = self.known_sha256(entry)
            if sha256 and wanted in (sha256[:SHORT_HASH_LENGTH], sha256):
                return entry
        known = ", ".join(entry.name for entry in self._entries) or f"none (folder {self.root} is empty)"
        raise ModelNotFound(f"Checkpoint {wanted!r} not found. Available: {known}")
