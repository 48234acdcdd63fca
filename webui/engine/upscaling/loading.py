"""Upscaler and face-restorer weight files → spandrel models, reading only tensors.

`.safetensors` files are read with safetensors; `.pth`/`.pt` pickles with `torch.load(weights_only=True)`,
so a pickle that wants to run code is refused, never executed (spandrel's own loader would use its
restricted unpickler; we do not hand it the file). Every failure is a ModelLoadError naming the file and why.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from webui.core.errors import ModelLoadError
from webui.engine.upscaling.spandrel_import import load_spandrel

MODEL_SUFFIXES = (".pth", ".pt", ".safetensors")
UPSCALER_PURPOSES = ("SR", "Restoration")  # spandrel's purposes usable image → image (1x models included)
FACE_PURPOSES = ("FaceSR",)


def _read_pickle(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as exc:
        message = str(exc)
        wanted = re.search(r"GLOBAL ([\w.]+)", message)
        if wanted:
            raise ModelLoadError(
                f"{path.name}: refused to load: the file's pickle wants to run code ({wanted.group(1)}); "
                "only plain tensors are read from .pth files. Use a .safetensors version of this model."
            ) from None
        detail = message.strip().splitlines()[-1] if message.strip() else type(exc).__name__
        raise ModelLoadError(
            f"{path.name}: not a readable PyTorch file (corrupt or truncated?): {detail}"
        ) from None


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    """The file's tensors on the CPU, unwrapped from the containers published models use (`params_ema`,
    `state_dict`, a `module.` prefix, …)."""
    if not path.is_file():
        raise ModelLoadError(f"{path}: model file not found")
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        try:
            data: Any = load_file(path, device="cpu")
        except (SafetensorError, OSError, ValueError) as exc:
            raise ModelLoadError(
                f"{path.name}: not a valid safetensors file (corrupt or truncated?): {exc}"
            ) from None
    elif suffix in MODEL_SUFFIXES:
        data = _read_pickle(path)
    else:
        raise ModelLoadError(f"{path.name}: unsupported file type {suffix!r} (use .safetensors or .pth)")
    if not isinstance(data, Mapping):
        raise ModelLoadError(f"{path.name}: holds a {type(data).__name__}, not a dictionary of weights")
    state = load_spandrel().canonicalize_state_dict(dict(data))
    tensors = {key: value for key, value in state.items() if isinstance(value, torch.Tensor)}
    if not tensors:
        raise ModelLoadError(f"{path.name}: holds no tensors; not a model file")
    return tensors


def load_model(path: Path, purposes: Collection[str] = UPSCALER_PURPOSES, registry: Any = None) -> Any:
    """The file as a spandrel `ImageModelDescriptor` on the CPU in float32, in eval mode.

    `registry` defaults to spandrel's main registry (MIT-licensed architectures); face restoration passes one
    that also holds the optional extra architectures."""
    spandrel = load_spandrel()
    state = read_weights(path)
    registry = registry if registry is not None else spandrel.MAIN_REGISTRY
    try:
        descriptor = registry.load(state)
    except spandrel.UnsupportedModelError:
        raise ModelLoadError(
            f"{path.name}: not a recognised upscaler or restorer architecture "
            "(spandrel detects ESRGAN, Real-ESRGAN, SwinIR, DAT, HAT, SCUNet, GFPGAN and more from the keys)"
        ) from None
    except (KeyError, RuntimeError, ValueError, IndexError, AssertionError) as exc:
        # Detected from some keys, but the rest of the file does not fit that architecture.
        raise ModelLoadError(
            f"{path.name}: incomplete or inconsistent weights: {type(exc).__name__}: {exc}"
        ) from None
    if descriptor.purpose not in purposes:
        raise ModelLoadError(
            f"{path.name}: a {descriptor.architecture.name} model for {descriptor.purpose!r}, "
            f"not usable here (expected {' or '.join(purposes)})"
        )
    return descriptor.eval()
