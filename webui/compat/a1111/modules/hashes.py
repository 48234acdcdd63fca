"""modules.hashes: sha256 of model files (A1111 caches them by title; ours by path, size and time)."""

from __future__ import annotations

from pathlib import Path

from webui.core.hashing import addnet_hash_safetensors, sha256_file


def calculate_sha256(filename: str) -> str:
    return sha256_file(Path(filename))


def sha256(filename: str, title: str, use_addnet_hash: bool = False) -> str | None:
    path = Path(filename)
    if not path.is_file():
        return None
    return addnet_hash_safetensors(path) if use_addnet_hash else sha256_file(path)


def sha256_from_cache(filename: str, title: str, use_addnet_hash: bool = False) -> str | None:
    """Nothing is cached under A1111's titles here: None, as A1111 answers for an unknown file."""
    return None
