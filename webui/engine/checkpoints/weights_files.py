"""Reading model weight files safely: .safetensors, and .ckpt/.pt pickles weights-only (a pickle that
wants to run code is refused, never executed)."""

from __future__ import annotations

import re
from collections.abc import Mapping
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
