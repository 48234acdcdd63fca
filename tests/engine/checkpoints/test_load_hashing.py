"""The first load of a file hashes it beside the load, not before or after it: the load does not wait
for the hash, the "Model hash" (infotext, title) waits for it only if asked before it is done."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest
import torch

from tools.tiny_models import TinyCheckpoint
from webui.core import hashing
from webui.core.hashing import HashCache
from webui.engine.checkpoints.manager import ModelManager
from webui.engine.checkpoints.registry import CheckpointRegistry
from webui.engine.devices import DeviceChoice

CPU = DeviceChoice(torch.device("cpu"), torch.float32)


def test_load_finishes_while_the_hash_is_still_running_and_the_hash_is_the_files(
    tmp_path: Path, tiny_sd1: TinyCheckpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    models = tmp_path / "models"
    models.mkdir()
    (models / "tiny.safetensors").write_bytes(tiny_sd1.path.read_bytes())
    release, hashed_on = threading.Event(), []
    real_sha256_file = hashing.sha256_file

    def slow_sha256_file(path: Path) -> str:
        hashed_on.append(threading.current_thread())
        if not release.wait(timeout=20):  # a load that waits for the hash never sets it
            raise AssertionError("the load waited for the hash")
        return real_sha256_file(path)

    monkeypatch.setattr(hashing, "sha256_file", slow_sha256_file)
    manager = ModelManager(CheckpointRegistry(models, HashCache(tmp_path / "cache.json")), CPU)
    loaded = manager.get("tiny")  # returns with the hash still blocked
    assert loaded.pipe.unet is not None and hashed_on and hashed_on[0] is not threading.current_thread()
    release.set()
    expected = hashlib.sha256(tiny_sd1.path.read_bytes()).hexdigest()
    assert manager.short_hash(loaded) == expected[:10]
    assert manager.registry.title(manager.entry_for(loaded)) == f"tiny.safetensors [{expected[:10]}]"
    # cached by (path, size, mtime): the second manager's load does not read the file again
    monkeypatch.setattr(hashing, "sha256_file", lambda path: pytest.fail("hashed again"))
    again = ModelManager(CheckpointRegistry(models, HashCache(tmp_path / "cache.json")), CPU)
    assert again.short_hash(again.get("tiny")) == expected[:10]
