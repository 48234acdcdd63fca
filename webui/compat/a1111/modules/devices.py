"""modules.devices: the torch device and dtypes A1111 extensions ask for, and torch_gc."""

from __future__ import annotations

import contextlib
import gc
from typing import Any

import torch

cpu = torch.device("cpu")
device = device_interrogate = device_gfpgan = device_esrgan = device_codeformer = (
    torch.device("cuda") if torch.cuda.is_available() else cpu
)
dtype = dtype_vae = dtype_unet = dtype_inference = torch.float16 if device.type == "cuda" else torch.float32


def get_optimal_device_name() -> str:
    return device.type


def get_optimal_device() -> torch.device:
    return device


def get_device_for(task: str) -> torch.device:
    return device


def torch_gc() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def autocast(disable: bool = False) -> Any:
    return contextlib.nullcontext()


def without_autocast(disable: bool = False) -> Any:
    return contextlib.nullcontext()


def cond_cast_unet(tensor: torch.Tensor) -> torch.Tensor:
    return tensor


def cond_cast_float(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.float() if device.type == "mps" else tensor


class NansException(Exception):
    pass
