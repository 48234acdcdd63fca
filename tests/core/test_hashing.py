"""File hashes as A1111 shows them, and the (path, size, mtime) cache."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from webui.core import hashing
from webui.core.hashing import HashCache

ABC_SHA256 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"  # FIPS 180-2 example


def _write(path: Path, data: bytes, mtime_ns: int) -> Path:
    path.write_bytes(data)
    os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


def test_sha256_of_a_known_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "abc.bin", b"abc", 10**18)
    cache = HashCache(tmp_path / "cache.json")
    assert cache.sha256(path) == ABC_SHA256
    assert cache.short_hash(path) == "ba7816bf8f"


def test_sha256_reads_in_chunks_across_boundaries(tmp_path: Path) -> None:
    data = os.urandom(2 * hashing.CHUNK_SIZE + 123)
    path = _write(tmp_path / "big.bin", data, 10**18)
    assert hashing.sha256_file(path) == hashlib.sha256(data).hexdigest()


def test_cache_hit_does_not_reread(tmp_path: Path) -> None:
    path = _write(tmp_path / "model.safetensors", b"first", 10**18)
    cache = HashCache(tmp_path / "cache.json")
    first = cache.sha256(path)
    # Same size and mtime: the cache answers, so the new content is not seen.
    _write(path, b"FIRST", 10**18)
    assert cache.sha256(path) == first
    # A new mtime means the file changed: hashed again.
    _write(path, b"FIRST", 10**18 + 1)
    assert cache.sha256(path) == hashlib.sha256(b"FIRST").hexdigest()
    # A new size with the same mtime too.
    _write(path, b"longer content", 10**18 + 1)
    assert cache.sha256(path) == hashlib.sha256(b"longer content").hexdigest()


def test_cache_persists_atomically_across_instances(tmp_path: Path) -> None:
    path = _write(tmp_path / "model.ckpt", b"abc", 10**18)
    cache_file = tmp_path / "sub" / "cache.json"
    HashCache(cache_file).sha256(path)
    assert [p.name for p in cache_file.parent.iterdir()] == ["cache.json"]  # no temporary left behind
    stored = json.loads(cache_file.read_text())
    assert stored["hashes"][str(path.resolve())]["sha256"] == ABC_SHA256
    _write(path, b"xyz", 10**18)  # same size and mtime: only a cache hit gives the old hash
    assert HashCache(cache_file).sha256(path) == ABC_SHA256


def test_unreadable_cache_is_ignored(tmp_path: Path) -> None:
    cache_file = tmp_path / "cache.json"
    cache_file.write_text("{ not json")
    path = _write(tmp_path / "a.bin", b"abc", 10**18)
    assert HashCache(cache_file).sha256(path) == ABC_SHA256
    assert json.loads(cache_file.read_text())["hashes"]  # rewritten whole


def _lora(path: Path, metadata: dict[str, str]) -> Path:
    save_file({"lora_up.weight": np.arange(12, dtype=np.float32).reshape(3, 4)}, path, metadata=metadata)
    return path


def test_addnet_hash_is_sha256_of_the_data_part(tmp_path: Path) -> None:
    path = _lora(tmp_path / "lora.safetensors", {"ss_network_dim": "4"})
    raw = path.read_bytes()
    header_length = int.from_bytes(raw[:8], "little")
    expected = hashlib.sha256(raw[8 + header_length :]).hexdigest()
    assert hashing.addnet_hash_safetensors(path) == expected
    cache = HashCache(tmp_path / "cache.json")
    assert cache.addnet_hash(path) == expected
    assert cache.addnet_short_hash(path) == expected[:12]
    assert cache.sha256(path) != expected  # both kinds are cached separately


def test_addnet_hash_ignores_metadata(tmp_path: Path) -> None:
    a = _lora(tmp_path / "a.safetensors", {"name": "a"})
    b = _lora(tmp_path / "b.safetensors", {"name": "a much longer name"})
    assert hashing.sha256_file(a) != hashing.sha256_file(b)
    assert hashing.addnet_hash_safetensors(a) == hashing.addnet_hash_safetensors(b)


def test_addnet_hash_rejects_non_safetensors(tmp_path: Path) -> None:
    short = _write(tmp_path / "short.bin", b"1234", 10**18)
    with pytest.raises(ValueError, match="8-byte"):
        hashing.addnet_hash_safetensors(short)
    bogus = _write(tmp_path / "bogus.bin", (10**6).to_bytes(8, "little") + b"{}", 10**18)
    with pytest.raises(ValueError, match="exceeds"):
        hashing.addnet_hash_safetensors(bogus)
