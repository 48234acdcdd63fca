"""torch's CPU thread count follows the loaded model's size, unless the user says otherwise."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from tools.tiny_models import TinyCheckpoint
from webui.core.hashing import HashCache
from webui.engine import threads
from webui.engine.checkpoints.manager import ModelManager
from webui.engine.checkpoints.registry import CheckpointRegistry
from webui.engine.devices import DeviceChoice
from webui.engine.threads import SMALL_MODEL_BYTES, threads_for

SD15_FP32 = 4_265_000_000


@pytest.fixture
def restore_threads() -> Iterator[None]:
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_small_models_get_one_thread_large_ones_the_free_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threads, "free_cores", lambda: 6)
    assert threads_for(27_000_000, environ={}) == 1  # the demo model
    assert threads_for(SMALL_MODEL_BYTES - 1, environ={}) == 1
    assert threads_for(SMALL_MODEL_BYTES, environ={}) == 6
    assert threads_for(SD15_FP32, environ={}) == 6


def test_the_setting_wins_then_omp_num_threads() -> None:
    assert threads_for(27_000_000, setting=3, environ={"OMP_NUM_THREADS": "2"}) == 3
    assert threads_for(27_000_000, environ={"OMP_NUM_THREADS": "2"}) == 2
    assert threads_for(SD15_FP32, environ={"OMP_NUM_THREADS": "1"}) == 1
    assert threads_for(27_000_000, environ={"OMP_NUM_THREADS": "many"}) == 1  # not a number: ignored


def test_loading_a_checkpoint_sets_the_threads_and_the_setting_overrides_it(
    tmp_path: Path, tiny_sd1_fast: TinyCheckpoint, monkeypatch: pytest.MonkeyPatch, restore_threads: None
) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    torch.set_num_threads(2)
    manager = ModelManager(
        CheckpointRegistry(tiny_sd1_fast.path.parent, HashCache(tmp_path / "cache.json")),
        DeviceChoice(torch.device("cpu"), torch.float32),
    )
    loaded = manager.get(tiny_sd1_fast.path.name)
    assert 0 < loaded.weight_bytes < SMALL_MODEL_BYTES
    assert torch.get_num_threads() == 1
    manager.set_torch_threads(2)
    assert torch.get_num_threads() == 2
    manager.set_torch_threads(0)
    assert torch.get_num_threads() == 1
