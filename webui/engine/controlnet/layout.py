"""The two layouts ControlNet files come in, read into one (the original).

- the original one (lllyasviel's .pth/.safetensors): `control_model.` + the LDM UNet encoder names
  (input_blocks, middle_block, time_embed, label_emb for SDXL), plus `input_hint_block.N` (the
  conditioning image encoder), `zero_convs.N.0` and `middle_block_out.0`;
- the diffusers one (a ControlNetModel's state dict saved as one file), turned into the original layout
  by the same mapping read backwards, so one path loads both (engine.controlnet.load).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch

from webui.core.errors import ModelLoadError
from webui.engine.checkpoints import ldm_layout as L
from webui.engine.checkpoints.weights_files import open_state_dict

PREFIX = "control_model."
HINT = PREFIX + "input_hint_block."
_DIFFUSERS_PROBE = "controlnet_cond_embedding.conv_in.weight"


def indices(keys: Iterable[str], pattern: str) -> list[int]:
    regex = re.compile(pattern)
    return sorted({int(m.group(1)) for key in keys if (m := regex.match(key))})


def controlnet_layout(keys: Iterable[str], prefix: str = PREFIX) -> L.Layout:
    """Where each tensor of a diffusers ControlNetModel lives in the original single-file layout.

    The UNet-encoder part is the LDM UNet layout under `prefix`; the hint encoder's convolutions sit at
    the even indices of `input_hint_block` (SiLUs in between), first conv_in, then the blocks, then
    conv_out."""
    keys = list(keys)
    own = ("controlnet_cond_embedding.", "controlnet_down_blocks.", "controlnet_mid_block.")
    layout = L.unet_layout([k for k in keys if not k.startswith(own)], prefix)
    blocks = len(indices(keys, r"controlnet_cond_embedding\.blocks\.(\d+)\."))
    for key in keys:
        module, _, param = key.rpartition(".")
        parts = module.split(".")
        if parts[0] == "controlnet_cond_embedding":
            index = {"conv_in": 0, "conv_out": 2 * (blocks + 1)}.get(parts[1])
            index = 2 * (int(parts[2]) + 1) if index is None else index
            layout[key] = L.Slot(f"{prefix}input_hint_block.{index}.{param}")
        elif parts[0] == "controlnet_down_blocks":
            layout[key] = L.Slot(f"{prefix}zero_convs.{parts[1]}.0.{param}")
        elif parts[0] == "controlnet_mid_block":
            layout[key] = L.Slot(f"{prefix}middle_block_out.0.{param}")
    return layout


def to_original(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A diffusers-layout ControlNet state dict in the original layout."""
    try:
        return L.to_ldm(state_dict, controlnet_layout(state_dict.keys()))
    except (ValueError, KeyError) as exc:
        raise ModelLoadError(f"not a ControlNet in the diffusers layout ({exc})") from None


def read_controlnet(path: Path) -> Mapping[str, torch.Tensor]:
    """The file's tensors in the original layout, whichever layout the file uses (an original-layout
    .safetensors file lazily: each tensor is read when the loader takes it)."""
    sd = open_state_dict(path)
    if HINT + "0.weight" in sd:
        return sd
    if _DIFFUSERS_PROBE in sd:
        try:
            return to_original(sd)
        except ModelLoadError as exc:
            raise ModelLoadError(f"{path.name}: {exc}") from None
    raise ModelLoadError(
        f"{path.name}: not a ControlNet: it has neither {HINT}* (original layout) nor "
        f"{_DIFFUSERS_PROBE} (diffusers layout) tensors, e.g. {', '.join(list(sd)[:3])}"
    )
