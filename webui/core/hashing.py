"""Model file hashes as A1111 shows them, cached on disk by (path, size, mtime).

- sha256 of the whole file; its first 10 hex digits are the "Model hash" / checkpoint short hash.
- The LoRA ("addnet") hash: sha256 of a safetensors file without its header (8-byte length + JSON), so
  editing the metadata keeps the hash; its first 12 hex digits go into "Lora hashes".

The cache lives in one JSON file (A1111 calls it cache.json), rewritten atomically after each new hash.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

logger = logging.getLogger(__name__)

CHUNK_SIZE = 1 << 20
SHORT_HASH_LENGTH = 10  # checkpoints: "Model hash"
ADDNET_SHORT_HASH_LENGTH = 12  # LoRAs: "Lora hashes"

_FULL = "hashes"
_ADDNET = "hashes-addnet"


def _sha256_stream(stream: BinaryIO) -> str:
    digest = hashlib.sha256()
    for chunk in iter(lambda: stream.read(CHUNK_SIZE), b""):
        digest.update(chunk)
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    """sha256 of the file's bytes, read in chunks."""
    with open(path, "rb") as stream:
        return _sha256_stream(stream)


def addnet_hash_safetensors(path: Path) -> str:
    """sha256 of a safetensors file's tensor data: everything after the 8-byte length and the JSON header."""
    with open(path, "rb") as stream:
        length_bytes = stream.read(8)
        if len(length_bytes) < 8:
            raise ValueError(f"{path} is not a safetensors file: shorter than its 8-byte header length")
        header_length = int.from_bytes(length_bytes, "little")
        if 8 + header_length > os.fstat(stream.fileno()).st_size:
            raise ValueError(
                f"{path} is not a safetensors file: header length {header_length} exceeds the file"
            )
        stream.seek(8 + header_length)
        return _sha256_stream(stream)


class HashCache:
    """sha256 and addnet hashes of model files, remembered in `cache_file` until a file changes.

    A file counts as unchanged while its size and modification time (ns) are; then it is not read
    again. Safe to share between threads; hashing itself runs outside the lock.
    """

    def __init__(self, cache_file: Path) -> None:
        self.cache_file = Path(cache_file)
        self._lock = threading.Lock()
        self._data = self._load()

    def sha256(self, path: Path) -> str:
        return self._cached(_FULL, Path(path), sha256_file)

    def short_hash(self, path: Path) -> str:
        """A1111's checkpoint short hash: the first 10 hex digits of the sha256."""
        return self.sha256(path)[:SHORT_HASH_LENGTH]

    def addnet_hash(self, path: Path) -> str:
        return self._cached(_ADDNET, Path(path), addnet_hash_safetensors)

    def addnet_short_hash(self, path: Path) -> str:
        """A1111's LoRA hash in the infotext: the first 12 hex digits of the addnet hash."""
        return self.addnet_hash(path)[:ADDNET_SHORT_HASH_LENGTH]

    def known_sha256(self, path: Path) -> str | None:
        """The sha256 if it is already cached for the file as it is now, without reading the file."""
        return self._lookup(_FULL, Path(path))

    def _lookup(self, section: str, path: Path) -> str | None:
        stat = path.stat()
        with self._lock:
            entry = self._data.get(section, {}).get(str(path.resolve()))
            if entry and entry.get("size") == stat.st_size and entry.get("mtime_ns") == stat.st_mtime_ns:
                return str(entry["sha256"])
        return None

    def _cached(self, section: str, path: Path, compute: Callable[[Path], str]) -> str:
        known = self._lookup(section, path)
        if known is not None:
            return known
        key = str(path.resolve())
        stat = path.stat()
        digest = compute(path)
        with self._lock:
            self._data.setdefault(section, {})[key] = {
                "size": stat.st_size,
                "mtime_ns": stat.st_mtime_ns,
                "sha256": digest,
            }
            self._save()
        return digest

    def _load(self) -> dict[str, dict[str, dict[str, Any]]]:
        try:
            data = json.loads(self.cache_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as error:
            logger.warning(
                "Ignoring unreadable hash cache %s (%s); hashes will be recomputed", self.cache_file, error
            )
            return {}
        if not isinstance(data, dict):
            logger.warning("Ignoring hash cache %s: not a JSON object", self.cache_file)
            return {}
        return {section: entries for section, entries in data.items() if isinstance(entries, dict)}

    def _save(self) -> None:
        # Write a temporary file beside the cache and rename it over: readers never see half a file.
        self.cache_file.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(
            prefix=self.cache_file.name, suffix=".tmp", dir=self.cache_file.parent
        )
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                json.dump(self._data, stream, indent=1, sort_keys=True)
            os.replace(temporary, self.cache_file)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
