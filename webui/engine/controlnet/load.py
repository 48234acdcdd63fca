"""Loading a ControlNet file for the loaded checkpoint, offline, with the bundled configs
(configs/controlnet-sd1, configs/controlnet-sdxl) fitted to the tensors' shapes.

A ControlNet is a trained copy of its checkpoint's UNet encoder: it must match the loaded checkpoint's
family, text width and channels (checked, with a message naming both), and its attention head layout,
which the weights do not show, is the checkpoint's.
"""

from __future__ import annotations

import json
import re
from collections import ChainMap
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from webui.core.errors import ModelLoadError
from webui.engine.checkpoints import ldm_configs
from webui.engine.checkpoints import ldm_layout as L
from webui.engine.checkpoints.components import CONFIGS, converter, fill_module
from webui.engine.checkpoints.loader import LoadedCheckpoint
from webui.engine.checkpoints.weights_files import shapes_of
from webui.engine.controlnet.layout import HINT, PREFIX, controlnet_layout, indices, read_controlnet

if TYPE_CHECKING:
    from diffusers import ControlNetModel

_LABEL = PREFIX + "label_emb.0.0.weight"


def _text_width(sd: Mapping[str, torch.Tensor]) -> int | None:
    return next((sd[k].shape[1] for k in sd if k.endswith("attn2.to_k.weight")), None)


def describe(sdxl: bool, text_width: int | None) -> str:
    """How the user knows the model's kind: "SDXL", "SD1.x" (CLIP ViT-L, 768), "SD2.x" (1024)."""
    if sdxl:
        return "SDXL"
    return {768: "SD1.x", 1024: "SD2.x"}.get(text_width or 0, f"SD1/SD2-style (text width {text_width})")


def check_fits(sd: Mapping[str, torch.Tensor], name: str, target: LoadedCheckpoint) -> None:
    """ModelLoadError unless the ControlNet was made for the loaded checkpoint's kind of model."""
    unet = target.pipe.unet.config
    mine = describe(_LABEL in sd, _text_width(sd))
    theirs = describe(target.architecture.family == "sdxl", unet.cross_attention_dim)
    same_kind = (_LABEL in sd) == (target.architecture.family == "sdxl")
    if not same_kind or _text_width(sd) != unet.cross_attention_dim:
        raise ModelLoadError(
            f"ControlNet {name} is an {mine} ControlNet; the checkpoint {target.path.name} is {theirs}. "
            f"Choose a ControlNet made for {theirs} models."
        )


def _bundled_config(name: str) -> dict[str, Any]:
    path = CONFIGS / name / "config.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(
            f"bundled config {path} is missing or broken ({exc}); reinstall the web UI"
        ) from None


def fit_config(sd: Mapping[str, torch.Tensor], target_unet: Mapping[str, Any]) -> dict[str, Any]:
    """The bundled ControlNet config with its shape-derived fields read from the original-layout tensors."""
    sdxl = _LABEL in sd
    base = _bundled_config("controlnet-sdxl" if sdxl else "controlnet-sd1")
    in_channels = sd[PREFIX + "input_blocks.0.0.weight"].shape[1]
    # A ControlNet is the UNet's encoder: fit it as a UNet. It has no output conv, so give that the
    # input's width (a meta tensor, never read).
    as_unet = ChainMap({PREFIX + "out.2.weight": torch.empty((in_channels, 1, 1, 1), device="meta")}, sd)
    pooled = None
    if sdxl:
        pooled = (
            target_unet["projection_class_embeddings_input_dim"] - 6 * target_unet["addition_time_embed_dim"]
        )
    unet = ldm_configs.fit_unet_config(as_unet, {}, sample_size=0, pooled_dim=pooled, prefix=PREFIX)
    hint = indices(sd, re.escape(HINT) + r"(\d+)\.weight")
    config = dict(base)
    config.update({key: unet[key] for key in _ENCODER_FIELDS if key in unet})
    config.update(
        conditioning_channels=sd[HINT + "0.weight"].shape[1],
        # conv_in, then every second conv (the strided ones) set the widths; the last is conv_out
        conditioning_embedding_out_channels=[sd[f"{HINT}{i}.weight"].shape[0] for i in hint[:-1:2]],
        # not in the weights: the head layout of the family's UNet the ControlNet was copied from
        attention_head_dim=target_unet["attention_head_dim"],
        num_attention_heads=target_unet.get("num_attention_heads"),
        upcast_attention=target_unet.get("upcast_attention"),
    )
    return config


_ENCODER_FIELDS = (
    "in_channels",
    "block_out_channels",
    "layers_per_block",
    "down_block_types",
    "cross_attention_dim",
    "use_linear_projection",
    "transformer_layers_per_block",
    "projection_class_embeddings_input_dim",
    "addition_time_embed_dim",
)


def _check_channels(config: Mapping[str, Any], name: str, target: LoadedCheckpoint) -> None:
    """The residuals a ControlNet adds must have the UNet's shapes."""
    unet = target.pipe.unet.config
    mine = (list(config["block_out_channels"]), config["layers_per_block"])
    theirs = (list(unet.block_out_channels), unet.layers_per_block)
    if mine != theirs:
        raise ModelLoadError(
            f"ControlNet {name} has channels {mine[0]} with {mine[1]} layers a level; the checkpoint "
            f"{target.path.name} has {theirs[0]} with {theirs[1]}: they do not fit together"
        )


def load_controlnet(
    path: Path, target: LoadedCheckpoint, device: torch.device, dtype: torch.dtype
) -> ControlNetModel:
    """Load a ControlNet file for the `target` checkpoint, offline, every weight from the file (strict)."""
    from accelerate import init_empty_weights
    from diffusers import ControlNetModel

    sd = read_controlnet(path)
    shapes = shapes_of(sd)  # the checks look at shapes only: nothing is read for them
    check_fits(shapes, path.name, target)
    try:
        config = fit_config(shapes, target.pipe.unet.config)
    except (KeyError, IndexError, StopIteration, ValueError) as exc:
        raise ModelLoadError(
            f"{path.name}: the ControlNet tensors are not laid out as expected ({exc})"
        ) from None
    _check_channels(config, path.name, target)
    try:
        with init_empty_weights():
            model = ControlNetModel.from_config(config)
    except (ValueError, TypeError, RuntimeError) as exc:
        raise ModelLoadError(
            f"{path.name}: the ControlNet cannot be built with the file's shapes: {exc}"
        ) from None
    layout = controlnet_layout(model.state_dict().keys())
    tensors, missing = L.from_ldm(sd, layout, converter(device, dtype))  # streams a lazily read file
    if missing:
        raise ModelLoadError(
            f"{path.name}: {len(missing)} ControlNet tensors missing, e.g. {', '.join(missing[:3])}"
        )
    used = {slot.key for slot in layout.values()}
    surplus = [key for key in shapes if key not in used]
    if surplus:
        raise ModelLoadError(
            f"{path.name}: {len(surplus)} tensors belong to no ControlNet part, e.g. {', '.join(surplus[:3])}"
        )
    return fill_module(model, tensors, device, dtype, f"{path.name}: the ControlNet")
