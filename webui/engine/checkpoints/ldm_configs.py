"""Component configs from an LDM single-file state dict: the `fit_*_config` functions read a component's
shape-derived fields (channels, depths, widths) from the tensors, starting from a bundled config of the
family, so real full-size checkpoints and tiny test checkpoints load through the same code.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import torch

from webui.engine.checkpoints.ldm_layout import UNET_PREFIX, VAE_PREFIX, block_indices

TEXT_HEAD_DIM = 64  # every SD text encoder (CLIP ViT-L, OpenCLIP ViT-H and ViT-bigG) uses 64-wide heads
UNET_HEAD_DIM = 64  # SD2 and SDXL UNets (SD1 has a fixed 8 heads instead)


def count_indices(state_dict: Mapping[str, Any], prefix: str) -> int:
    """How many numbered children `prefix.N.` the state dict has (0 when none)."""
    return max(block_indices(state_dict, re.escape(prefix) + r"(\d+)\."), default=-1) + 1


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
    time_ids: int = 6,
) -> dict[str, Any]:
    """UNet config from the LDM UNet. `pooled_dim`: SDXL's pooled text embedding width (text_projection);
    `time_ids`: the numbers SDXL embeds beside it (6 sizes and crops; a refiner's 5 end in the aesthetic
    score)."""
    blocks = count_indices(sd, f"{prefix}input_blocks.")
    downsamplers = sorted(block_indices(sd, re.escape(f"{prefix}input_blocks.") + r"(\d+)\.0\.op\."))
    # input_blocks.0 is conv_in, then each level has its resnet(+attention) blocks and ends with an `op`
    per_level = downsamplers[0] if downsamplers else blocks
    levels = blocks // per_level
    first = [1 + i * per_level for i in range(levels)]  # the first resnet(+attention) block of each level
    channels = [sd[f"{prefix}input_blocks.{b}.0.out_layers.3.weight"].shape[0] for b in first]
    proj_ins = [sd.get(f"{prefix}input_blocks.{b}.1.proj_in.weight") for b in first]
    attention = [p is not None for p in proj_ins]
    depth = [max(count_indices(sd, f"{prefix}input_blocks.{b}.1.transformer_blocks."), 1) for b in first]
    mid_depth = count_indices(sd, f"{prefix}middle_block.1.transformer_blocks.")
    if mid_depth and not attention[-1]:  # diffusers gives the mid block the last level's depth (refiner: 4)
        depth[-1] = mid_depth
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
        # SDXL: the label embedding takes the pooled text embedding + Fourier-embedded size/crop numbers
        adm_in = sd[f"{prefix}label_emb.0.0.weight"].shape[1]
        if pooled_dim is None or (adm_in - pooled_dim) % time_ids:
            raise ValueError(f"UNet label embedding of width {adm_in} does not fit a pooled text embedding")
        config.update(
            projection_class_embeddings_input_dim=adm_in,
            addition_time_embed_dim=(adm_in - pooled_dim) // time_ids,
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
