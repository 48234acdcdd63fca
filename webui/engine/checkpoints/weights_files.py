"""Reading model weight files safely: .safetensors, and .ckpt/.pt pickles weights-only (a pickle that
wants to run code is refused, never executed)."""

from __future__ import annotations

import json
import mmap
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file

from webui.core.errors import ModelLoadError
from webui.engine.checkpoints.pickle_imports import code_imports

SAFETENSORS_SUFFIXES = (".safetensors", ".sft")
PICKLE_SUFFIXES = (".ckpt", ".pt", ".pth", ".bin")


def _lightning_globals() -> list[Any]:
    """Plain-data types old Lightning .ckpt files pickle next to the weights (step counters as numpy
    scalars, the ModelCheckpoint callback's state). Allowing these runs no code from the file: the
    callback class here is an empty stand-in whose instances only receive attributes."""
    from numpy._core.multiarray import scalar

    callback = type("ModelCheckpoint", (), {"__module__": "pytorch_lightning.callbacks.model_checkpoint"})
    dtypes = [t for t in vars(numpy.dtypes).values() if isinstance(t, type)]
    return [
        callback,
        (scalar, "numpy.core.multiarray.scalar"),
        (scalar, "numpy._core.multiarray.scalar"),
        numpy.dtype,
        *dtypes,
    ]


def _read_pickle(path: Path) -> Any:
    try:
        with torch.serialization.safe_globals(_lightning_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError, ... for bad files
        message = str(exc)
        wanted = re.search(r"GLOBAL ([\w.]+)", message)
        code = [wanted.group(1)] if wanted else code_imports(path)
        if code:
            raise ModelLoadError(
                f"{path.name}: refused as unsafe: the file's pickle wants to run code ({', '.join(code)}), "
                "and no code is run from model files. Only plain tensors are read from .ckpt/.pt files; "
                "use a .safetensors version of this model."
            ) from exc
        detail = message.strip().splitlines()[-1] if message.strip() else type(exc).__name__
        raise ModelLoadError(
            f"{path.name}: not a readable PyTorch checkpoint (corrupt or truncated?): {detail}"
        ) from exc


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """All tensors of a .safetensors or .ckpt/.pt file, on the CPU. Pickles are read weights-only."""
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"{path}: checkpoint file not found")
    suffix = path.suffix.lower()
    if suffix in SAFETENSORS_SUFFIXES:
        try:
            return load_file(path, device="cpu")
        except (SafetensorError, OSError, ValueError) as exc:
            raise ModelLoadError(
                f"{path.name}: not a valid safetensors file (corrupt or truncated?): {exc}"
            ) from None
    if suffix not in PICKLE_SUFFIXES:
        raise ModelLoadError(
            f"{path.name}: unsupported checkpoint type {suffix!r} (use .safetensors or .ckpt)"
        )
    data = _read_pickle(path)
    if isinstance(data, Mapping) and isinstance(data.get("state_dict"), Mapping):
        data = data["state_dict"]
    tensors = (
        {k: v for k, v in data.items() if isinstance(v, torch.Tensor)} if isinstance(data, Mapping) else {}
    )
    if not tensors:
        raise ModelLoadError(f"{path.name}: holds no tensors; not a model checkpoint")
    return tensors


# safetensors dtype names (the format's spec) -> torch dtypes
_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "F8_E4M3": torch.float8_e4m3fn,
    "F8_E5M2": torch.float8_e5m2,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}


class SafetensorsFile(Mapping[str, torch.Tensor]):
    """The tensors of a .safetensors file, each read when looked up, into memory of its own: converted
    by `convert` (e.g. to the model's dtype and device) straight from the file's pages, which are then
    released, so the process never holds the file's copy of more than one tensor besides what the caller
    keeps. (A plain memory map, as safetensors' load_file gives, keeps every page read until the end and
    counts them all as the process's memory.)"""

    def __init__(self, path: Path, convert: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        self.path = path
        self._convert = convert
        try:
            with path.open("rb") as f:
                length = int.from_bytes(f.read(8), "little")
                if not 2 <= length <= path.stat().st_size - 8:
                    raise ValueError(f"header length {length} does not fit the file")
                header = json.loads(f.read(length))
                # private and copy-on-write: writable for torch.frombuffer, never written
                self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
        except (OSError, ValueError) as exc:
            raise ModelLoadError(
                f"{path.name}: not a valid safetensors file (corrupt or truncated?): {exc}"
            ) from None
        self.metadata: dict[str, str] = header.pop("__metadata__", None) or {}
        self._start = 8 + length
        self._entries: dict[str, tuple[torch.dtype, list[int], int, int]] = {}
        for key, entry in header.items():
            try:
                begin, end = entry["data_offsets"]
                dtype = _DTYPES[entry["dtype"]]
                shape = [int(n) for n in entry["shape"]]
            except (KeyError, TypeError, ValueError) as exc:
                raise ModelLoadError(f"{path.name}: not a valid safetensors file: bad entry {key!r}") from exc
            expected = dtype.itemsize * int(torch.Size(shape).numel())
            if not 0 <= begin <= end <= len(self._map) - self._start or end - begin != expected:
                raise ModelLoadError(
                    f"{path.name}: not a valid safetensors file (corrupt or truncated?): "
                    f"tensor {key!r} lies outside the file or has the wrong size"
                )
            self._entries[key] = (dtype, shape, self._start + begin, self._start + end)

    def __getitem__(self, key: str) -> torch.Tensor:
        dtype, shape, begin, end = self._entries[key]
        if begin == end:
            return torch.empty(shape, dtype=dtype)
        mapped = torch.frombuffer(self._map, dtype=torch.uint8, count=end - begin, offset=begin)
        tensor = mapped.view(dtype).reshape(shape)
        converted = self._convert(tensor) if self._convert else tensor
        if converted.data_ptr() == tensor.data_ptr():  # no conversion happened: copy off the map
            converted = converted.clone()
        del mapped, tensor
        page = mmap.PAGESIZE
        self._map.madvise(mmap.MADV_DONTNEED, begin - begin % page, end - (begin - begin % page))
        return converted

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def meta(self) -> dict[str, torch.Tensor]:
        """Every tensor as a meta tensor: names, shapes and dtypes to look at, nothing read."""
        return {
            key: torch.empty(shape, dtype=dtype, device="meta")
            for key, (dtype, shape, _, _) in self._entries.items()
        }


def open_state_dict(
    path: str | Path, convert: Callable[[torch.Tensor], torch.Tensor] | None = None
) -> Mapping[str, torch.Tensor]:
    """The tensors of a model file, as lazily as its format allows: a .safetensors file's tensors are read
    (and passed through `convert`) one by one when looked up (SafetensorsFile); a pickle has to be read
    whole (read_state_dict; `convert` is then the caller's job)."""
    path = Path(path)
    if path.suffix.lower() in SAFETENSORS_SUFFIXES and path.is_file():
        return SafetensorsFile(path, convert)
    return read_state_dict(path)


def shapes_of(state_dict: Mapping[str, torch.Tensor]) -> Mapping[str, torch.Tensor]:
    """`state_dict` for looking at names and shapes only (architecture probes, config fitting): a lazily
    read file's tensors as meta tensors, so probing reads nothing."""
    return state_dict.meta() if isinstance(state_dict, SafetensorsFile) else state_dict


def read_metadata(path: str | Path) -> dict[str, str]:
    """The safetensors header's metadata (empty for pickles and files without any)."""
    path = Path(path)
    if path.suffix.lower() not in SAFETENSORS_SUFFIXES:
        return {}
    try:
        with safe_open(path, framework="pt") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError) as exc:
        raise ModelLoadError(f"{path.name}: not a valid safetensors file: {exc}") from None
