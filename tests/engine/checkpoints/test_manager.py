"""ModelManager (LRU cache of loaded checkpoints, device slots) and CheckpointRegistry (scan, find, titles).

The cache tests put a spy in place of load_checkpoint that hands out stand-in pipes recording where they
were moved: what is checked is which checkpoints the manager loads, keeps and places, not loading itself
(tests/engine/checkpoints/test_loader.py). A failing load goes through the real loader.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
import torch

from tools.tiny_models import TinyCheckpoint
from webui.core import hashing
from webui.core.errors import ModelLoadError, ModelNotFound, UserError
from webui.core.hashing import HashCache
from webui.engine.checkpoints import manager as manager_module
from webui.engine.checkpoints.architecture import Architecture
from webui.engine.checkpoints.loader import LoadedCheckpoint
from webui.engine.checkpoints.manager import ModelManager
from webui.engine.checkpoints.registry import CheckpointRegistry
from webui.engine.devices import DeviceChoice

CPU = DeviceChoice(torch.device("cpu"), torch.float32)
ACCELERATOR = DeviceChoice(torch.device("cuda"), torch.float16)  # only named: stand-in pipes never touch it
SD1 = Architecture(family="sd1", prediction_type="epsilon", inpainting=False, default_size=512)


class StandInPipe:
    """Records where the manager puts it (pipe.to), like a diffusers pipeline's device."""

    def __init__(self) -> None:
        self.device = "cpu"

    def to(self, device: torch.device | str) -> StandInPipe:
        self.device = torch.device(device).type
        return self

    def set_progress_bar_config(self, **options: object) -> None:
        self.progress_bar = options


class LoadSpy:
    """Replaces load_checkpoint: counts loads, remembers where every pipe was while each load ran."""

    def __init__(self, failing: tuple[str, ...] = ()) -> None:
        self.loads: list[str] = []
        self.pipes: dict[str, StandInPipe] = {}
        self.devices_during_load: list[dict[str, str]] = []
        self.failing = failing

    def __call__(self, path: Path, device: torch.device, dtype: torch.dtype) -> LoadedCheckpoint:
        self.devices_during_load.append({name: pipe.device for name, pipe in self.pipes.items()})
        if path.name in self.failing:
            raise ModelLoadError(f"{path.name}: not a valid safetensors file")
        self.loads.append(path.stem)
        pipe = self.pipes[path.stem] = StandInPipe().to(device)
        return LoadedCheckpoint(path=path, architecture=SD1, pipe=pipe)  # type: ignore[arg-type]

    def where(self) -> dict[str, str]:
        return {name: pipe.device for name, pipe in self.pipes.items()}


def make_models(folder: Path, *names: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(f"weights of {name}".encode())
    return folder


def make_registry(tmp_path: Path, *names: str) -> CheckpointRegistry:
    return CheckpointRegistry(make_models(tmp_path / "models", *names), HashCache(tmp_path / "cache.json"))


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> LoadSpy:
    spy = LoadSpy(failing=("broken.safetensors",))
    monkeypatch.setattr(manager_module, "load_checkpoint", spy)
    return spy


def make_manager(
    tmp_path: Path, device: DeviceChoice = CPU, device_slots: int = 1, keep_in_cpu: bool = True
) -> ModelManager:
    names = ("a.safetensors", "b.safetensors", "c.safetensors", "broken.safetensors")
    registry = make_registry(tmp_path, *names)
    return ModelManager(registry, device, device_slots=device_slots, keep_in_cpu=keep_in_cpu)


def stems(manager: ModelManager) -> list[str]:
    return [path.stem for path in manager.loaded_paths()]


# --- ModelManager ---------------------------------------------------------------------------------


def test_switching_back_reuses_the_checkpoint_kept_in_ram(tmp_path: Path, spy: LoadSpy) -> None:
    manager = make_manager(tmp_path, device_slots=1, keep_in_cpu=True)
    a = manager.get("a")
    b = manager.get("b")
    again = manager.get("a")
    assert spy.loads == ["a", "b"]
    assert again is a and again.pipe is a.pipe and b is not a
    assert manager.current is a and stems(manager) == ["b", "a"]


def test_a_third_checkpoint_evicts_the_least_recently_used(tmp_path: Path, spy: LoadSpy) -> None:
    manager = make_manager(tmp_path, device_slots=1, keep_in_cpu=True)
    first_a = manager.get("a")
    manager.get("b")
    manager.get("c")
    assert spy.loads == ["a", "b", "c"] and stems(manager) == ["b", "c"]
    second_a = manager.get("a")
    assert spy.loads == ["a", "b", "c", "a"] and second_a is not first_a
    assert stems(manager) == ["c", "a"]  # b was now the least recently used
    manager.get("c")
    assert len(spy.loads) == 4


def test_without_keep_in_cpu_only_the_current_checkpoint_stays(tmp_path: Path, spy: LoadSpy) -> None:
    manager = make_manager(tmp_path, device_slots=1, keep_in_cpu=False)
    for name in ("a", "b", "a"):
        assert manager.get(name).path.stem == name
        assert stems(manager) == [name]
    assert spy.loads == ["a", "b", "a"]


def test_memory_is_collected_only_when_a_checkpoint_is_freed(
    tmp_path: Path, spy: LoadSpy, monkeypatch: pytest.MonkeyPatch
) -> None:
    collections: list[int] = []
    monkeypatch.setattr(manager_module.gc, "collect", lambda: collections.append(1) or 0)
    manager = make_manager(tmp_path, device_slots=1, keep_in_cpu=True)
    for name in ("a", "a", "b", "a", "b"):  # a full collection takes long: not on a mere reselection
        manager.get(name)
    assert collections == []
    manager.get("c")
    assert collections == [1]


def test_configure_applies_new_limits_at_once(tmp_path: Path, spy: LoadSpy) -> None:
    manager = make_manager(tmp_path, device_slots=2, keep_in_cpu=True)
    for name in ("a", "b", "c"):
        manager.get(name)
    assert stems(manager) == ["a", "b", "c"]
    manager.configure(device_slots=1, keep_in_cpu=False)
    assert stems(manager) == ["c"] and manager.current is not None and manager.current.path.stem == "c"


def test_on_an_accelerator_only_device_slots_checkpoints_are_on_it_even_while_loading(
    tmp_path: Path, spy: LoadSpy
) -> None:
    manager = make_manager(tmp_path, ACCELERATOR, device_slots=1, keep_in_cpu=True)
    manager.get("a")
    manager.get("b")
    assert spy.devices_during_load[1] == {"a": "cpu"}  # a left the device before b was loaded onto it
    assert spy.where() == {"a": "cpu", "b": "cuda"}
    manager.get("a")
    assert spy.where() == {"a": "cuda", "b": "cpu"} and spy.loads == ["a", "b"]

    two = make_manager(tmp_path / "two", ACCELERATOR, device_slots=2, keep_in_cpu=True)
    spy.pipes.clear()
    for name in ("a", "b", "c"):
        two.get(name)
    assert spy.devices_during_load[-1] == {"a": "cpu", "b": "cuda"}
    assert spy.where() == {"a": "cpu", "b": "cuda", "c": "cuda"}


def test_failed_load_on_an_accelerator_puts_the_current_checkpoint_back(tmp_path: Path, spy: LoadSpy) -> None:
    manager = make_manager(tmp_path, ACCELERATOR, device_slots=1, keep_in_cpu=True)
    current = manager.get("a")
    with pytest.raises(ModelLoadError):
        manager.get("broken")
    assert manager.current is current and stems(manager) == ["a"]
    assert spy.where() == {"a": "cuda"}


def test_failed_load_is_a_clear_error_and_the_previous_checkpoint_stays(
    tmp_path: Path, tiny_sd1: TinyCheckpoint
) -> None:
    models = make_models(tmp_path / "models")
    shutil.copy(tiny_sd1.path, models / "good.safetensors")
    (models / "broken.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    manager = ModelManager(CheckpointRegistry(models, HashCache(tmp_path / "cache.json")), CPU)
    good = manager.get("good")
    with pytest.raises(ModelLoadError, match="broken.safetensors"):
        manager.get("broken.safetensors")
    assert manager.current is good
    assert manager.loaded_paths() == [good.path]
    assert manager.get() is good


def test_get_without_a_name_loads_the_first_checkpoint_or_says_there_is_none(
    tmp_path: Path, spy: LoadSpy
) -> None:
    manager = make_manager(tmp_path)
    assert manager.get().path.name == "a.safetensors" and manager.get() is manager.current
    assert spy.loads == ["a"]
    empty = ModelManager(make_registry(tmp_path / "empty"), CPU)
    with pytest.raises(ModelLoadError, match="No checkpoint found"):
        empty.get()
    with pytest.raises(ModelNotFound):
        manager.get("z")


def test_model_hash_is_the_one_of_the_file_as_loaded(tmp_path: Path, spy: LoadSpy) -> None:
    manager = make_manager(tmp_path)
    loaded = manager.get("a")
    loaded_hash = hashlib.sha256(loaded.path.read_bytes()).hexdigest()[:10]
    assert manager.short_hash(loaded) == loaded_hash
    loaded.path.write_bytes(b"other weights, saved over the file after loading")
    assert manager.short_hash(loaded) == loaded_hash  # what the weights in memory came from
    assert manager.registry.short_hash(manager.entry_for(loaded)) != loaded_hash


# --- CheckpointRegistry ---------------------------------------------------------------------------


def test_find_accepts_title_file_name_model_name_path_and_known_hash(tmp_path: Path) -> None:
    registry = make_registry(tmp_path, "a.safetensors", "sub/b.ckpt", "model [v2].safetensors")
    a, b, v2 = (registry.find(name) for name in ("a", "sub/b", "model [v2]"))
    assert (a.name, b.name, v2.name) == ("a.safetensors", "sub/b.ckpt", "model [v2].safetensors")
    assert b.model_name == "sub/b"
    for wanted in ("a.safetensors", " a ", str(a.path), "a.safetensors [0123456789]"):
        assert registry.find(wanted) == a, wanted
    for wanted in ("sub/b.ckpt", "b.ckpt", "b"):
        assert registry.find(wanted) == b, wanted
    sha256 = hashlib.sha256(v2.path.read_bytes()).hexdigest()
    with pytest.raises(ModelNotFound):
        registry.find(sha256[:10])  # not hashed yet: finding must not read every file
    assert registry.short_hash(v2) == sha256[:10]
    for wanted in (sha256[:10], sha256, registry.title(v2), "model [v2].safetensors"):
        assert registry.find(wanted) == v2, wanted
    assert registry.title(v2) == f"model [v2].safetensors [{sha256[:10]}]"


def test_model_not_found_lists_the_available_names(tmp_path: Path) -> None:
    registry = make_registry(tmp_path, "a.safetensors", "sub/b.ckpt")
    with pytest.raises(ModelNotFound) as error:
        registry.find("nothere.safetensors")
    assert isinstance(error.value, UserError) and error.value.status_code == 404
    assert "'nothere.safetensors'" in str(error.value) and "a.safetensors, sub/b.ckpt" in str(error.value)
    with pytest.raises(ModelNotFound, match="empty"):
        make_registry(tmp_path / "empty").find("a")


def test_refresh_picks_up_new_files_and_drops_removed_ones(tmp_path: Path) -> None:
    registry = make_registry(tmp_path, "a.safetensors", "notes.txt", "a.yaml")
    outside = make_models(tmp_path / "elsewhere", "extra.safetensors") / "extra.safetensors"
    with_extra = CheckpointRegistry(registry.root, registry.hashes, extra_files=(outside,))
    assert [e.name for e in registry.entries] == ["a.safetensors"]
    assert [e.name for e in with_extra.entries] == ["a.safetensors", "extra.safetensors"]
    make_models(registry.root, "new/c.SAFETENSORS", "d.ckpt")
    assert [e.name for e in registry.entries] == ["a.safetensors"]  # scanned on refresh only
    registry.refresh()
    assert [e.name for e in registry.entries] == ["a.safetensors", "d.ckpt", "new/c.SAFETENSORS"]
    assert registry.find("new/c").model_name == "new/c"
    registry.short_hash(registry.find("a"))
    (registry.root / "a.safetensors").unlink()
    # listed until the next refresh, without its hash, and without failing on the missing file
    assert registry.titles() == ["a.safetensors", "d.ckpt", "new/c.SAFETENSORS"]
    with pytest.raises(ModelNotFound):
        registry.find("0123456789")
    registry.refresh()
    assert [e.name for e in registry.entries] == ["d.ckpt", "new/c.SAFETENSORS"]


def test_titles_carry_the_hash_only_once_computed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[Path] = []
    real_sha256_file = hashing.sha256_file
    monkeypatch.setattr(hashing, "sha256_file", lambda path: reads.append(path) or real_sha256_file(path))
    registry = make_registry(tmp_path, "a.safetensors", "b.safetensors")
    assert registry.titles() == ["a.safetensors", "b.safetensors"] and reads == []
    a = registry.find("a")
    short = hashlib.sha256(a.path.read_bytes()).hexdigest()[:10]
    assert registry.short_hash(a) == short and len(reads) == 1
    assert registry.titles() == [f"a.safetensors [{short}]", "b.safetensors"]
    assert registry.short_hash(a) == short and len(reads) == 1  # cached
    restarted = CheckpointRegistry(registry.root, HashCache(registry.hashes.cache_file))
    assert restarted.titles()[0] == f"a.safetensors [{short}]" and len(reads) == 1  # the cache file
