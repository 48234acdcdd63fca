"""The original LDM / A1111 single-file layout of SD1, SD2 and SDXL checkpoints, in both directions.

A *layout* says, for every tensor name of a diffusers/transformers component, where that tensor lives in
the single file (`Slot`: the LDM key and how the tensor is stored there: as is, transposed, as a 1x1
conv, or as one third of a fused q/k/v projection). The same layout converts diffusers -> LDM
(`to_ldm`, used to write checkpoints: test fixtures, the demo model) and LDM -> diffusers (`from_ldm`,
used by the loader), so what we write is exactly what we read. Layouts are computed from a model's own
tensor names, which the loader gets from a model built on the meta device.

Beside it: engine.checkpoints.ldm_configs (component configs from an LDM state dict's shapes) and
engine.checkpoints.ldm_export (whole pipelines written in this layout).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import torch

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
SD1_CLIP_PREFIX = "cond_stage_model.transformer."
SD2_CLIP_PREFIX = "cond_stage_model.model."
SDXL_CLIP_L_PREFIX = "conditioner.embedders.0.transformer."
SDXL_CLIP_G_PREFIX = "conditioner.embedders.1.model."
SDXL_REFINER_CLIP_PREFIX = "conditioner.embedders.0.model."  # a refiner's only text encoder (OpenCLIP-G)


class Kind(enum.Enum):
    PLAIN = "plain"
    TRANSPOSE = "transpose"  # OpenCLIP's text_projection is stored as x @ W, not a Linear weight
    CONV1X1 = "conv1x1"  # the LDM VAE's attention projections are 1x1 convolutions
    QKV = "qkv"  # OpenCLIP fuses q, k, v into one in_proj tensor


@dataclass(frozen=True)
class Slot:
    key: str
    kind: Kind = Kind.PLAIN
    part: int = 0  # 0/1/2 = q/k/v for Kind.QKV


Layout = dict[str, Slot]  # diffusers tensor name -> where it is in the LDM file


_UNET_FIXED = {
    "time_embedding.linear_1": "time_embed.0",
    "time_embedding.linear_2": "time_embed.2",
    "add_embedding.linear_1": "label_emb.0.0",
    "add_embedding.linear_2": "label_emb.0.2",
    "conv_in": "input_blocks.0.0",
    "conv_norm_out": "out.0",
    "conv_out": "out.2",
}
_UNET_RESNET = {
    "norm1": "in_layers.0",
    "conv1": "in_layers.2",
    "time_emb_proj": "emb_layers.1",
    "norm2": "out_layers.0",
    "conv2": "out_layers.3",
    "conv_shortcut": "skip_connection",
}


def block_indices(keys: Iterable[str], pattern: str) -> set[int]:
    regex = re.compile(pattern)
    return {int(m.group(1)) for k in keys if (m := regex.match(k))}


def unet_layout(keys: Iterable[str], prefix: str = UNET_PREFIX) -> Layout:
    """Layout of a diffusers UNet2DConditionModel (SD1/SD2/SDXL family) given its tensor names."""
    keys = list(keys)
    resnets = max(block_indices(keys, r"down_blocks\.0\.resnets\.(\d+)\."), default=0) + 1
    per_level = resnets + 1  # LDM numbers each level's resnets and its downsampler (upsampler) together
    up_with_attention = block_indices(keys, r"up_blocks\.(\d+)\.attentions\.")

    def resnet(rest: str) -> str:
        name, _, tail = rest.partition(".")
        return f"{_UNET_RESNET[name]}.{tail}"

    def inner(kind: str, rest: str) -> str:
        """In an input/output block, slot 0 holds the resnet, slot 1 the attention (diffusers' names)."""
        return f"0.{resnet(rest)}" if kind == "resnets" else f"1.{rest}"

    def ldm_name(key: str) -> str:
        module, _, param = key.rpartition(".")
        if module in _UNET_FIXED:
            return f"{_UNET_FIXED[module]}.{param}"
        p = key.split(".")
        if p[0] == "mid_block":  # resnet, attention, resnet: modules directly, no slots
            index, rest = int(p[2]), ".".join(p[3:])
            return (
                f"middle_block.{2 * index}.{resnet(rest)}" if p[1] == "resnets" else f"middle_block.1.{rest}"
            )
        if p[0] not in ("down_blocks", "up_blocks"):
            raise ValueError(f"UNet tensor {key!r} has no place in the SD layout")
        level, kind, index, rest = int(p[1]), p[2], int(p[3]), ".".join(p[4:])
        if p[0] == "down_blocks":
            if kind == "downsamplers":  # down_blocks.L.downsamplers.0.conv.weight
                return f"input_blocks.{(level + 1) * per_level}.0.op.{'.'.join(p[5:])}"
            return f"input_blocks.{1 + level * per_level + index}.{inner(kind, rest)}"
        if kind == "upsamplers":  # after the level's last resnet, and after its attention where there is one
            slot = 2 if level in up_with_attention else 1
            return f"output_blocks.{level * per_level + per_level - 1}.{slot}.{rest}"
        return f"output_blocks.{level * per_level + index}.{inner(kind, rest)}"

    return {k: Slot(prefix + ldm_name(k)) for k in keys}


_VAE_ATTENTION = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}


def vae_layout(keys: Iterable[str], prefix: str = VAE_PREFIX) -> Layout:
    """Layout of a diffusers AutoencoderKL given its tensor names."""
    keys = list(keys)
    up_levels = max(block_indices(keys, r"decoder\.up_blocks\.(\d+)\."), default=-1) + 1

    def slot(key: str) -> Slot:
        part, _, rest = key.partition(".")  # encoder / decoder / quant_conv / post_quant_conv
        if part in ("quant_conv", "post_quant_conv"):
            return Slot(prefix + key)
        rest = rest.replace("conv_norm_out", "norm_out").replace("conv_shortcut", "nin_shortcut")
        p = rest.split(".")
        if p[0] in ("down_blocks", "up_blocks"):
            # LDM numbers the decoder's levels from the bottom, diffusers from the top
            level = int(p[1]) if p[0] == "down_blocks" else up_levels - 1 - int(p[1])
            stage = "down" if p[0] == "down_blocks" else "up"
            if p[2] == "resnets":
                return Slot(f"{prefix}{part}.{stage}.{level}.block.{'.'.join(p[3:])}")
            sampler = "downsample" if stage == "down" else "upsample"  # downsamplers.0.conv.weight
            return Slot(f"{prefix}{part}.{stage}.{level}.{sampler}.{'.'.join(p[4:])}")
        if p[0] == "mid_block" and p[1] == "resnets":
            return Slot(f"{prefix}{part}.mid.block_{int(p[2]) + 1}.{'.'.join(p[3:])}")
        if p[0] == "mid_block" and p[1] == "attentions":
            module, _, param = ".".join(p[3:]).rpartition(".")
            kind = Kind.CONV1X1 if param == "weight" and module != "group_norm" else Kind.PLAIN
            return Slot(f"{prefix}{part}.mid.attn_1.{_VAE_ATTENTION[module]}.{param}", kind)
        return Slot(f"{prefix}{part}.{rest}")  # conv_in, conv_out, norm_out

    return {k: slot(k) for k in keys}


def _text_name(key: str) -> str:
    # transformers 5 flattened CLIPTextModel (no `text_model.`); CLIPTextModelWithProjection keeps it
    return key.removeprefix("text_model.")


def clip_layout(keys: Iterable[str], prefix: str) -> Layout:
    """OpenAI CLIP text model (SD1, SDXL's first encoder): the transformers names under `text_model.`."""
    return {k: Slot(f"{prefix}text_model.{_text_name(k)}") for k in keys}


_OPEN_CLIP_FIXED = {
    "embeddings.token_embedding.weight": "token_embedding.weight",
    "embeddings.position_embedding.weight": "positional_embedding",
    "final_layer_norm.weight": "ln_final.weight",
    "final_layer_norm.bias": "ln_final.bias",
}
_OPEN_CLIP_LAYER = {
    "layer_norm1": "ln_1",
    "layer_norm2": "ln_2",
    "self_attn.out_proj": "attn.out_proj",
    "mlp.fc1": "mlp.c_fc",
    "mlp.fc2": "mlp.c_proj",
}


def open_clip_layout(keys: Iterable[str], prefix: str) -> Layout:
    """OpenCLIP text tower (SD2, SDXL's second encoder) in open_clip's own names."""

    def slot(key: str) -> Slot:
        if key == "text_projection.weight":
            return Slot(prefix + "text_projection", Kind.TRANSPOSE)
        name = _text_name(key)
        if name in _OPEN_CLIP_FIXED:
            return Slot(prefix + _OPEN_CLIP_FIXED[name])
        m = re.fullmatch(r"encoder\.layers\.(\d+)\.(.+)\.(weight|bias)", name)
        if m is None:
            raise ValueError(f"text encoder tensor {key!r} has no place in the OpenCLIP layout")
        layer, module, param = m.groups()
        block = f"{prefix}transformer.resblocks.{layer}."
        if module in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"):
            return Slot(f"{block}attn.in_proj_{param}", Kind.QKV, "qkv".index(module[10]))
        return Slot(f"{block}{_OPEN_CLIP_LAYER[module]}.{param}")

    return {k: slot(k) for k in keys}


def to_ldm(tensors: Mapping[str, torch.Tensor], layout: Layout) -> dict[str, torch.Tensor]:
    """Diffusers tensors -> LDM tensors (fusing q/k/v, reshaping 1x1 convs, transposing projections)."""
    out: dict[str, torch.Tensor] = {}
    fused: dict[str, dict[int, torch.Tensor]] = {}
    for name, tensor in tensors.items():
        slot = layout[name]
        tensor = tensor.detach()
        if slot.kind is Kind.QKV:
            fused.setdefault(slot.key, {})[slot.part] = tensor
        elif slot.kind is Kind.TRANSPOSE:
            out[slot.key] = tensor.T.contiguous()
        elif slot.kind is Kind.CONV1X1:
            out[slot.key] = tensor.reshape(*tensor.shape, 1, 1)
        else:
            out[slot.key] = tensor.contiguous()
    for key, parts in fused.items():
        out[key] = torch.cat([parts[i] for i in range(3)])
    return out


def from_ldm(
    state_dict: Mapping[str, torch.Tensor],
    layout: Layout,
    convert: Callable[[torch.Tensor], torch.Tensor] = lambda tensor: tensor,
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """LDM tensors -> the diffusers tensors the layout names, plus the LDM keys that are missing.

    Each LDM tensor is looked up once and every diffusers tensor passes through `convert` (dtype, device)
    as soon as it is cut out, so a lazily read state dict (weights_files.SafetensorsFile) streams: only
    the converted tensors are kept, never the file's copy of them all."""
    names_of: dict[str, list[str]] = {}
    for name, slot in layout.items():
        names_of.setdefault(slot.key, []).append(name)
    missing = sorted(key for key in names_of if key not in state_dict)
    tensors: dict[str, torch.Tensor] = {}
    if missing:
        return tensors, missing
    for key, names in names_of.items():
        tensor = state_dict[key]
        for name in names:
            slot = layout[name]
            if slot.kind is Kind.QKV:
                tensors[name] = convert(tensor.chunk(3)[slot.part])
            elif slot.kind is Kind.TRANSPOSE:
                tensors[name] = convert(tensor.T.contiguous())
            elif slot.kind is Kind.CONV1X1 and tensor.ndim == 4:  # some files store them as linear already
                tensors[name] = convert(tensor[:, :, 0, 0])
            else:
                tensors[name] = convert(tensor)
        del tensor  # the file's copy goes before the next one is read
    return tensors, missing
