"""Pick the torch device and dtype from the command-line flags."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeviceChoice:
    device: torch.device
    dtype: torch.dtype

    def describe(self) -> str:
        return f"{self.device.type} ({str(self.dtype).removeprefix('torch.')})"


def choose_device(force_cpu: bool, full_precision: bool, device_id: str | None) -> DeviceChoice:
    """CUDA in fp16 when present, else the CPU in fp32 (fp16/bf16 are unusably slow on CPUs)."""
    if torch.cuda.is_available() and not force_cpu:
        device = torch.device(f"cuda:{device_id}" if device_id else "cuda")
        return DeviceChoice(device, torch.float32 if full_precision else torch.float16)
    if full_precision:
        log.info("--no-half/--precision full: the CPU runs in float32 anyway")
    return DeviceChoice(torch.device("cpu"), torch.float32)
