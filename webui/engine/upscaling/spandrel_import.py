"""Imports spandrel where torchvision is not installed.

`spandrel/__init__` imports every architecture it knows, and two of them import names from
`torchvision.transforms.functional` at import time: LaMa (`InterpolationMode`, `rotate`) and RestoreFormer
(`normalize`). torchvision from the registry does not work beside the CPU torch build we install (its
compiled ops fail at import), so spandrel is installed with --no-deps and, when torchvision is absent, this
module lends spandrel a stand-in for exactly those three names *during spandrel's import only*:

- `normalize` is implemented in torch (RestoreFormer, a face restorer, calls it on every image);
- `InterpolationMode` is an enum with torchvision's member names and values;
- `rotate` raises: only LaMa (an inpainting model, never used as an upscaler here) calls it.

The stand-in modules are removed from `sys.modules` again right after the import, so code that probes for
torchvision later (transformers, diffusers) still finds none. A real torchvision, when installed, is used
as it is.
"""

from __future__ import annotations

import enum
import importlib
import importlib.util
import sys
import threading
import warnings
from collections.abc import Sequence
from types import ModuleType

import torch

STANDIN_NAMES = ("torchvision", "torchvision.transforms", "torchvision.transforms.functional")
# Held while the stand-in is in sys.modules, so two threads never import spandrel against it at once.
_IMPORT_LOCK = threading.Lock()


class InterpolationMode(enum.Enum):
    """torchvision's member names and values."""

    NEAREST = "nearest"
    NEAREST_EXACT = "nearest-exact"
    BILINEAR = "bilinear"
    BICUBIC = "bicubic"
    BOX = "box"
    HAMMING = "hamming"
    LANCZOS = "lanczos"


def normalize(
    tensor: torch.Tensor, mean: Sequence[float], std: Sequence[float], inplace: bool = False
) -> torch.Tensor:
    """torchvision's `normalize`: (tensor - mean) / std per channel of a (…, C, H, W) tensor."""
    mean_t = torch.as_tensor(mean, dtype=tensor.dtype, device=tensor.device).view(-1, 1, 1)
    std_t = torch.as_tensor(std, dtype=tensor.dtype, device=tensor.device).view(-1, 1, 1)
    if inplace:
        return tensor.sub_(mean_t).div_(std_t)
    return (tensor - mean_t) / std_t


def rotate(*_args: object, **_kwargs: object) -> torch.Tensor:
    raise RuntimeError(
        "this model (LaMa inpainting) needs torchvision's rotate, and torchvision is not installed"
    )


def _standin_modules() -> dict[str, ModuleType]:
    functional = ModuleType("torchvision.transforms.functional", "torch-only stand-in (see spandrel_import)")
    vars(functional).update(InterpolationMode=InterpolationMode, normalize=normalize, rotate=rotate)
    transforms = ModuleType("torchvision.transforms")
    vars(transforms).update(functional=functional)
    package = ModuleType("torchvision")
    vars(package).update(transforms=transforms)
    return dict(zip(STANDIN_NAMES, (package, transforms, functional), strict=True))


def import_with_standin(module_name: str) -> ModuleType:
    """`importlib.import_module(module_name)`, lending the torchvision stand-in during the import when
    torchvision is not installed."""
    if module_name in sys.modules:
        return sys.modules[module_name]
    with _IMPORT_LOCK:
        if module_name in sys.modules or importlib.util.find_spec("torchvision") is not None:
            return importlib.import_module(module_name)
        standins = _standin_modules()
        sys.modules.update(standins)
        try:
            return importlib.import_module(module_name)
        finally:
            for name, module in standins.items():
                if sys.modules.get(name) is module:
                    del sys.modules[name]


def load_spandrel() -> ModuleType:
    """The `spandrel` package (MIT): upscaler and restorer architectures detected from weights."""
    return import_with_standin("spandrel")


def load_extra_arches() -> ModuleType | None:
    """`spandrel_extra_arches` (CodeFormer and other non-commercially licensed architectures) when the user
    installed it, else None. It is optional on purpose: see docs/upscalers.md."""
    load_spandrel()
    if importlib.util.find_spec("spandrel_extra_arches") is None:
        return None
    with warnings.catch_warnings():  # one of its architectures decorates with the deprecated torch.jit.script
        warnings.filterwarnings("ignore", "`torch.jit.script` is deprecated", DeprecationWarning)
        return import_with_standin("spandrel_extra_arches")
