"""The streaming checkpoint loader: tensors read one by one from the file, converted as they are read,
gives exactly what reading the whole file first gives, and never holds the file beside the model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from tools.tiny_models import TinyCheckpoint
from webui.core.errors import ModelLoadError
from webui.engine.checkpoints import loader, weights_files
from webui.engine.checkpoints.components import converter
from webui.engine.checkpoints.weights_files import (
    SafetensorsFile,
    open_state_dict,
    read_metadata,
    read_state_dict,
)

CPU = torch.device("cpu")


def test_lazy_file_reads_every_dtype_and_shape_as_safetensors_does(tmp_path: Path) -> None:
    tensors = {
        "f32": torch.randn(3, 5),
        "f16": torch.randn(7).half(),
        "bf16": torch.randn(2, 2, 3).bfloat16(),
        "i64": torch.arange(6).reshape(2, 3),
        "bool": torch.tensor([True, False, True]),
        "u8": torch.arange(5, dtype=torch.uint8),
        "scalar": torch.tensor(2.5),
        "empty": torch.zeros(0, 4),
    }
    path = tmp_path / "all.safetensors"
    save_file(tensors, path, metadata={"modelspec.title": "x"})
    lazy = SafetensorsFile(path)
    assert set(lazy) == set(tensors) and len(lazy) == len(tensors)
    for key, expected in load_file(path).items():
        assert lazy[key].dtype == expected.dtype and torch.equal(lazy[key], expected), key
    assert lazy.metadata == read_metadata(path) == {"modelspec.title": "x"}
    half = SafetensorsFile(path, converter(CPU, torch.float16))
    assert half["f32"].dtype == torch.float16 and half["i64"].dtype == torch.int64
    assert torch.equal(half["f32"], tensors["f32"].half())


def test_truncated_or_garbled_files_are_refused_with_their_name(tmp_path: Path) -> None:
    path = tmp_path / "cut.safetensors"
    save_file({"w": torch.randn(64, 64)}, path)
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ModelLoadError, match="cut.safetensors: not a valid safetensors file"):
        open_state_dict(path)
    path.write_bytes(b"\xff" * 64)
    with pytest.raises(ModelLoadError, match="cut.safetensors: not a valid safetensors file"):
        open_state_dict(path)


def _eager(path: str | Path, convert: object = None) -> dict[str, torch.Tensor]:
    return read_state_dict(path)  # the loader before streaming: the whole file first, then convert


@pytest.mark.parametrize("fixture", ["tiny_sd1", "tiny_sd2_v", "tiny_sdxl", "tiny_sd1_inpaint"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_streamed_load_equals_the_whole_file_load_bit_for_bit(
    fixture: str, dtype: torch.dtype, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    tiny: TinyCheckpoint = request.getfixturevalue(fixture)
    streamed = loader.load_checkpoint(tiny.path, CPU, dtype)
    monkeypatch.setattr(loader, "open_state_dict", _eager)
    whole = loader.load_checkpoint(tiny.path, CPU, dtype)
    assert streamed.architecture == whole.architecture
    for name, module in whole.pipe.components.items():
        if not isinstance(module, torch.nn.Module):
            continue
        mine = getattr(streamed.pipe, name).state_dict()
        assert mine.keys() == module.state_dict().keys()
        for key, expected in module.state_dict().items():
            assert mine[key].dtype == expected.dtype and torch.equal(mine[key], expected), (name, key)


def test_loading_reads_each_tensor_once_and_never_the_whole_file(
    tiny_sd1: TinyCheckpoint, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Probing the architecture reads nothing (shapes from the header); each tensor is read once, when its
    module takes it; the whole-file reader is not used."""
    reads: list[str] = []
    real_getitem = SafetensorsFile.__getitem__

    def counting_getitem(self: SafetensorsFile, key: str) -> torch.Tensor:
        reads.append(key)
        return real_getitem(self, key)

    monkeypatch.setattr(SafetensorsFile, "__getitem__", counting_getitem)
    monkeypatch.setattr(weights_files, "load_file", lambda *args, **kwargs: pytest.fail("read whole"))
    loader.load_checkpoint(tiny_sd1.path, CPU, torch.float32)
    assert len(reads) == len(set(reads)), "a tensor was read twice"
    everything = set(SafetensorsFile(tiny_sd1.path))
    assert set(reads) < everything  # what no component uses (position ids, ...) is never read
