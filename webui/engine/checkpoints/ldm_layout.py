"""The original LDM / A1111 single-file layout of SD1, SD2 and SDXL checkpoints, in both directions.

A *layout* says, for every tensor name of a diffusers/transformers component, where that tensor lives in
the single file (`Slot`: the LDM key and how the tensor is stored there: as is, transposed, as a 1x1
conv, or as one third of a fused q/k/v projection). The same layout converts diffusers -> LDM
(`to_ldm`, used to write checkpoints: test fixtures, the demo model) and LDM -> diffusers (`from_ldm`,
used by the loader), so what we write is exactly what we read. Layouts are computed from a model's own
tensor names, which the loader gets from a model built on the meta device.

The `fit_*_config` functions read a component's shape-derived config fields (channels, depths, widths)
from an LDM state dict, starting from a bundled config of the family.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
SD1_CLIP_PREFIX = "cond_stage_model.transformer."
SD2_CLIP_PREFIX = "cond_stage_model.model."
SDXL_CLIP_L_PREFIX = "conditioner.embedders.0.transformer."
SDXL_CLIP_G_PREFIX = "conditioner.embedders.1.model."
TEXT_HEAD_DIM = 64  # every SD text encoder (CLIP ViT-L, OpenCLIP ViT-H and ViT-bigG) uses 64-wide heads
UNET_HEAD_DIM = 64  # SD2 and SDXL UNets (SD1 has a fixed 8 heads instead)
OPEN_CLIP_LOGIT_SCALE = math.log(100.0)  # the value trained OpenCLIP models end with


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


# --- UNet -----------------------------------------------------------------------------------------

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


def _block_indices(keys: Iterable[str], pattern: str) -> set[int]:
    regex = re.compile(pattern)
    return {int(m.group(1)) for k in keys if (m := regex.match(k))}


def unet_layout(keys: Iterable[str], prefix: str = UNET_PREFIX) -> Layout:
    """Layout of a diffusers UNet2DConditionModel (SD1/SD2/SDXL family) given its tensor names."""
    keys = list(keys)
    resnets = max(_block_indices(keys, r"down_blocks\.0\.resnets\.(\d+)\."), default=0) + 1
    per_level = resnets + 1  # LDM numbers each level's resnets and its downsampler (upsampler) together
    up_with_attention = _block_indices(keys, r"up_blocks\.(\d+)\.attentions\.")

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


# --- VAE ------------------------------------------------------------------------------------------

_VAE_ATTENTION = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}


def vae_layout(keys: Iterable[str], prefix: str = VAE_PREFIX) -> Layout:
    """Layout of a diffusers AutoencoderKL given its tensor names."""
    keys = list(keys)
    up_levels = max(_block_indices(keys, r"decoder\.up_blocks\.(\d+)\."), default=-1) + 1

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


# --- text encoders --------------------------------------------------------------------------------


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


# --- conversion -----------------------------------------------------------------------------------


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
    state_dict: Mapping[str, torch.Tensor], layout: Layout
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """LDM tensors -> the diffusers tensors the layout names, plus the LDM keys that are missing."""
    tensors: dict[str, torch.Tensor] = {}
    missing: list[str] = []
    for name, slot in layout.items():
        tensor = state_dict.get(slot.key)
        if tensor is None:
            missing.append(slot.key)
        elif slot.kind is Kind.QKV:
            tensors[name] = tensor.chunk(3)[slot.part]
        elif slot.kind is Kind.TRANSPOSE:
            tensors[name] = tensor.T.contiguous()
        elif slot.kind is Kind.CONV1X1 and tensor.ndim == 4:  # some files store them as linear already
            tensors[name] = tensor[:, :, 0, 0]
        else:
            tensors[name] = tensor
    return tensors, sorted(set(missing))


# --- shape-derived configs ------------------------------------------------------------------------


def count_indices(state_dict: Mapping[str, Any], prefix: str) -> int:
    """How many numbered children `prefix.N.` the state dict has (0 when none)."""
    return max(_block_indices(state_dict, re.escape(prefix) + r"(\d+)\."), default=-1) + 1


def _set(config: dict[str, Any], key: str, value: Any, default: Any) -> None:
    # keep the bundled config free of entries that only restate diffusers' default
    if key in config or value != default:
        config[key] = value


def fit_vae_config(
    sd: Mapping[str, torch.Tensor], base: Mapping[str, Any], prefix: str = VAE_PREFIX
) -> dict[str, Any]:
    levels = count_indices(sd, f"{prefix}encoder.down.")
    config = dict(base)
    config.update(
        in_channels=sd[f"{prefix}encoder.conv_in.weight"].shape[1],
        out_channels=sd[f"{prefix}decoder.conv_out.weight"].shape[0],
        latent_channels=sd[f"{prefix}decoder.conv_in.weight"].shape[1],
        layers_per_block=count_indices(sd, f"{prefix}encoder.down.0.block."),
        block_out_channels=[
            sd[f"{prefix}encoder.down.{i}.block.0.conv2.weight"].shape[0] for i in range(levels)
        ],
        down_block_types=["DownEncoderBlock2D"] * levels,
        up_block_types=["UpDecoderBlock2D"] * levels,
    )
    _set(config, "mid_block_add_attention", f"{prefix}encoder.mid.attn_1.q.weight" in sd, True)
    return config


def fit_unet_config(
    sd: Mapping[str, torch.Tensor],
    base: Mapping[str, Any],
    sample_size: int,
    pooled_dim: int | None = None,
    prefix: str = UNET_PREFIX,
) -> dict[str, Any]:
    """UNet config from the LDM UNet. `pooled_dim`: SDXL's pooled text embedding width (text_projection)."""
    blocks = count_indices(sd, f"{prefix}input_blocks.")
    downsamplers = sorted(_block_indices(sd, re.escape(f"{prefix}input_blocks.") + r"(\d+)\.0\.op\."))
    # input_blocks.0 is conv_in, then each level has its resnet(+attention) blocks and ends with an `op`
    per_level = downsamplers[0] if downsamplers else blocks
    levels = blocks // per_level
    first = [1 + i * per_level for i in range(levels)]  # the first resnet(+attention) block of each level
    channels = [sd[f"{prefix}input_blocks.{b}.0.out_layers.3.weight"].shape[0] for b in first]
    proj_ins = [sd.get(f"{prefix}input_blocks.{b}.1.proj_in.weight") for b in first]
    attention = [p is not None for p in proj_ins]
    depth = [max(count_indices(sd, f"{prefix}input_blocks.{b}.1.transformer_blocks."), 1) for b in first]
    proj_in = next(p for p in proj_ins if p is not None)
    cross = next(sd[k] for k in sd if k.startswith(prefix) and k.endswith("attn2.to_k.weight"))

    config = dict(base)
    config.update(
        in_channels=sd[f"{prefix}input_blocks.0.0.weight"].shape[1],
        out_channels=sd[f"{prefix}out.2.weight"].shape[0],
        block_out_channels=channels,
        layers_per_block=per_level - 1,
        down_block_types=["CrossAttnDownBlock2D" if a else "DownBlock2D" for a in attention],
        up_block_types=["CrossAttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attention)],
        cross_attention_dim=cross.shape[1],
        use_linear_projection=proj_in.ndim == 2,
        sample_size=sample_size,
    )
    if isinstance(base.get("attention_head_dim"), list):
        # SD2/SDXL: 64-wide heads (diffusers' "attention_head_dim" is the number of heads here)
        config["attention_head_dim"] = [max(1, c // UNET_HEAD_DIM) for c in channels]
    _set(config, "transformer_layers_per_block", depth if len(set(depth)) > 1 else depth[0], 1)
    if f"{prefix}label_emb.0.0.weight" in sd:
        # SDXL: the label embedding takes the pooled text embedding + 6 Fourier-embedded size/crop numbers
        adm_in = sd[f"{prefix}label_emb.0.0.weight"].shape[1]
        if pooled_dim is None or (adm_in - pooled_dim) % 6:
            raise ValueError(f"UNet label embedding of width {adm_in} does not fit a pooled text embedding")
        config.update(
            projection_class_embeddings_input_dim=adm_in, addition_time_embed_dim=(adm_in - pooled_dim) // 6
        )
    return config


def _text_common(sd: Mapping[str, torch.Tensor], token_key: str, positions: torch.Tensor) -> dict[str, Any]:
    vocab, hidden = sd[token_key].shape
    return {
        "vocab_size": vocab,
        "hidden_size": hidden,
        "max_position_embeddings": positions.shape[0],
        "num_attention_heads": max(1, hidden // TEXT_HEAD_DIM),
    }


def fit_clip_config(sd: Mapping[str, torch.Tensor], base: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    p = f"{prefix}text_model."
    config = dict(base)
    positions = sd[f"{p}embeddings.position_embedding.weight"]
    config.update(_text_common(sd, f"{p}embeddings.token_embedding.weight", positions))
    config.update(
        num_hidden_layers=count_indices(sd, f"{p}encoder.layers."),
        intermediate_size=sd[f"{p}encoder.layers.0.mlp.fc1.weight"].shape[0],
    )
    return config


def fit_open_clip_config(
    sd: Mapping[str, torch.Tensor], base: Mapping[str, Any], prefix: str, skip_last_layer: bool
) -> dict[str, Any]:
    """`skip_last_layer`: SD2 conditions on the penultimate layer, so diffusers' SD2 encoder has one fewer."""
    config = dict(base)
    config.update(_text_common(sd, f"{prefix}token_embedding.weight", sd[f"{prefix}positional_embedding"]))
    config.update(
        num_hidden_layers=count_indices(sd, f"{prefix}transformer.resblocks.") - int(skip_last_layer),
        intermediate_size=sd[f"{prefix}transformer.resblocks.0.mlp.c_fc.weight"].shape[0],
    )
    if not skip_last_layer:
        config["projection_dim"] = sd[f"{prefix}text_projection"].shape[1]
    return config


# --- whole pipelines ------------------------------------------------------------------------------


def _family(pipe: Any) -> str:
    if getattr(pipe, "text_encoder_2", None) is not None:
        return "sdxl"
    # OpenAI's CLIP (SD1) uses quick_gelu, OpenCLIP's ViT-H (SD2) plain gelu
    return "sd2" if pipe.text_encoder.config.hidden_act == "gelu" else "sd1"


def _position_ids(text_encoder: Any, prefix: str) -> dict[str, torch.Tensor]:
    positions = text_encoder.config.max_position_embeddings
    return {f"{prefix}text_model.embeddings.position_ids": torch.arange(positions).unsqueeze(0)}


def _sd2_unused_tail(text_encoder: Any, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """What SD2 files hold beyond diffusers' encoder: the last OpenCLIP block (unused: SD2 conditions on the
    penultimate one; written as an identity block), the text projection and logit scale of the CLIP model."""
    cfg = text_encoder.config
    width, inner = cfg.hidden_size, cfg.intermediate_size
    block = f"{SD2_CLIP_PREFIX}transformer.resblocks.{cfg.num_hidden_layers}."
    zeros = {
        "attn.in_proj_weight": (3 * width, width),
        "attn.in_proj_bias": (3 * width,),
        "attn.out_proj.weight": (width, width),
        "attn.out_proj.bias": (width,),
        "ln_1.bias": (width,),
        "ln_2.bias": (width,),
        "mlp.c_fc.weight": (inner, width),
        "mlp.c_fc.bias": (inner,),
        "mlp.c_proj.weight": (width, inner),
        "mlp.c_proj.bias": (width,),
    }
    tail = {block + name: torch.zeros(shape, dtype=dtype) for name, shape in zeros.items()}
    tail |= {
        block + "ln_1.weight": torch.ones(width, dtype=dtype),
        block + "ln_2.weight": torch.ones(width, dtype=dtype),
    }
    tail[f"{SD2_CLIP_PREFIX}text_projection"] = torch.eye(width, dtype=dtype)
    tail[f"{SD2_CLIP_PREFIX}logit_scale"] = torch.tensor(OPEN_CLIP_LOGIT_SCALE, dtype=dtype)
    return tail


def pipeline_to_ldm_state_dict(pipe: Any, family: str | None = None) -> dict[str, torch.Tensor]:
    """All weights of an SD1/SD2/SDXL diffusers pipeline in the single-file layout of the original models.

    `family` ("sd1" | "sd2" | "sdxl") defaults to what the pipeline's text encoders are."""
    family = family or _family(pipe)
    unet, vae, text = pipe.unet.state_dict(), pipe.vae.state_dict(), pipe.text_encoder.state_dict()
    sd = to_ldm(unet, unet_layout(unet)) | to_ldm(vae, vae_layout(vae))
    if family == "sd1":
        sd |= to_ldm(text, clip_layout(text, SD1_CLIP_PREFIX))
        sd |= _position_ids(pipe.text_encoder, SD1_CLIP_PREFIX)
    elif family == "sd2":
        sd |= to_ldm(text, open_clip_layout(text, SD2_CLIP_PREFIX))
        sd |= _sd2_unused_tail(pipe.text_encoder, pipe.text_encoder.dtype)
    elif family == "sdxl":
        text_2 = pipe.text_encoder_2.state_dict()
        sd |= to_ldm(text, clip_layout(text, SDXL_CLIP_L_PREFIX))
        sd |= _position_ids(pipe.text_encoder, SDXL_CLIP_L_PREFIX)
        sd |= to_ldm(text_2, open_clip_layout(text_2, SDXL_CLIP_G_PREFIX))
        scale = torch.tensor(OPEN_CLIP_LOGIT_SCALE, dtype=pipe.text_encoder_2.dtype)
        sd[f"{SDXL_CLIP_G_PREFIX}logit_scale"] = scale
    else:
        raise ValueError(f"unknown family {family!r}")
    return sd


def save_ldm_checkpoint(
    pipe: Any, path: str | Path, metadata: dict[str, str] | None = None, family: str | None = None
) -> Path:
    """Write the pipeline as one .safetensors file in the original SD layout (as A1111 and civitai use)."""
    path = Path(path)
    tensors = {k: v.cpu() for k, v in pipeline_to_ldm_state_dict(pipe, family).items()}
    save_file(tensors, str(path), metadata={"format": "pt", **(metadata or {})})
    return path
