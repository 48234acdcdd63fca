"""The "Checkpoints to cache in RAM" setting (sd_checkpoint_cache): that many more checkpoints stay
loaded beside the current one and the "keep in CPU" slot, and switching back to them loads nothing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from tools.tiny_models import TinyCheckpoint
from webui.core.hashing import HashCache
from webui.engine.checkpoints import manager as manager_module
from webui.engine.checkpoints.manager import ModelManager
from webui.engine.checkpoints.registry import CheckpointRegistry
from webui.engine.devices import DeviceChoice
from webui.services.options import ModelOptions
from webui.services.settings import Settings

CPU = DeviceChoice(torch.device("cpu"), torch.float32)


def test_checkpoint_cache_setting_keeps_that_many_more_checkpoints_loaded(
    tmp_path: Path, tiny_sd1_fast: TinyCheckpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    models = tmp_path / "models"
    models.mkdir()
    for name in "abcd":
        shutil.copy(tiny_sd1_fast.path, models / f"{name}.safetensors")
    loads: list[str] = []
    real_load = manager_module.load_checkpoint

    def counting_load(path: Path, *args: object) -> object:
        loads.append(path.stem)
        return real_load(path, *args)

    monkeypatch.setattr(manager_module, "load_checkpoint", counting_load)
    settings = Settings(tmp_path / "config.json")
    settings.update({"sd_checkpoint_cache": 2})
    options = ModelOptions.from_settings(settings)
    assert options.checkpoint_cache == 2
    manager = ModelManager(CheckpointRegistry(models, HashCache(tmp_path / "cache.json")), CPU)
    manager.configure(options.checkpoints_limit, options.keep_in_cpu, options.checkpoint_cache)
    for name in "abcd":
        manager.get(name)
    # 1 on the device + 1 kept in CPU + 2 cached: all four stay, switching back loads nothing
    assert [p.stem for p in manager.loaded_paths()] == ["a", "b", "c", "d"]
    manager.get("a")
    assert loads == ["a", "b", "c", "d"]
    manager.configure(options.checkpoints_limit, options.keep_in_cpu, 0)  # the setting back to 0
    assert [p.stem for p in manager.loaded_paths()] == ["d", "a"]
