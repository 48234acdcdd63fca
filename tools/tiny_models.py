"""Tiny SD1 / SD2 / SDXL pipelines, saved as real single-file checkpoints in the original LDM layout.

They use the bundled family configs with small dimensions (UNet channels (32, 64), 2-layer text encoders
of width 32, a 2-level VAE) and the real CLIP tokenizer, so a checkpoint goes through exactly the loader
path a user's file takes. Building is deterministic: the same seed gives the same bytes.

Other tests (API, browser) use it to put a model into a temporary models folder:

    from tools.tiny_models import save_tiny_checkpoint
    save_tiny_checkpoint(models_dir / "Stable-diffusion" / "tiny.safetensors")
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from diffusers import (
    AutoencoderKL,
    DiffusionPipeline,
    StableDiffusionInpaintPipeline,
    StableDiffusionPipeline,
    StableDiffusionXLImg2ImgPipeline,
    StableDiffusionXLInpaintPipeline,
    StableDiffusionXLPipeline,
    UNet2DConditionModel,
)
from diffusers import schedulers as diffusers_schedulers
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

from webui.engine.checkpoints.components import CONFIGS, TOKENIZER_DIR
from webui.engine.checkpoints.ldm_export import save_ldm_checkpoint

# "-inpaint": the inpainting architecture (a 9-channel UNet: latents, mask, masked-image latents)
Variant = Literal["sd1", "sd2", "sd2-v", "sdxl", "sd1-inpaint", "sdxl-inpaint", "sdxl-refiner"]
TEXT_WIDTH = 32
VAE_SCALE = 2  # two VAE levels
DEFAULT_SIZE = {
    "sd1": 512, "sd2": 512, "sd2-v": 768, "sdxl": 1024, "sd1-inpaint": 512, "sdxl-inpaint": 1024,
    "sdxl-refiner": 1024,
}  # fmt: skip


def _config(variant: str, component: str, file: str = "config.json") -> dict[str, Any]:
    return json.loads((CONFIGS / variant / component / file).read_text(encoding="utf-8"))


def _unet(variant: Variant, full_resolution_attention: bool = True) -> UNet2DConditionModel:
    config = _config(variant, "unet")
    config.update(block_out_channels=[32, 64], sample_size=DEFAULT_SIZE[variant] // VAE_SCALE)
    if variant == "sdxl-refiner":  # the refiner's shape: attention in the middle levels only, deeper there
        config.update(
            block_out_channels=[32, 64, 64],
            down_block_types=["DownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
            up_block_types=["UpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
            transformer_layers_per_block=2,
            attention_head_dim=[1, 1, 1],
            cross_attention_dim=TEXT_WIDTH,  # OpenCLIP-G alone
            addition_time_embed_dim=8,
            projection_class_embeddings_input_dim=TEXT_WIDTH + 5 * 8,  # size, crop, aesthetic score
        )
    elif variant.startswith("sdxl"):
        config.update(
            down_block_types=["DownBlock2D", "CrossAttnDownBlock2D"],
            up_block_types=["CrossAttnUpBlock2D", "UpBlock2D"],
            transformer_layers_per_block=[1, 2],
            attention_head_dim=[1, 1],
            cross_attention_dim=2 * TEXT_WIDTH,
            addition_time_embed_dim=8,
            projection_class_embeddings_input_dim=TEXT_WIDTH + 6 * 8,
        )
    elif full_resolution_attention:  # SD's own shape: attention at the top level
        config.update(
            down_block_types=["CrossAttnDownBlock2D", "DownBlock2D"],
            up_block_types=["UpBlock2D", "CrossAttnUpBlock2D"],
            cross_attention_dim=TEXT_WIDTH,
        )
    else:  # attention only at the lower level: quadratic attention cost stays small at 512x512
        config.update(
            down_block_types=["DownBlock2D", "CrossAttnDownBlock2D"],
            up_block_types=["CrossAttnUpBlock2D", "UpBlock2D"],
            cross_attention_dim=TEXT_WIDTH,
        )
    if variant in ("sd2", "sd2-v"):  # 64-wide heads, so one head at these widths; also one resnet per level
        config.update(attention_head_dim=[1, 1], layers_per_block=1)
    return UNet2DConditionModel.from_config(config)


def _vae(variant: Variant, levels: int = 2) -> AutoencoderKL:
    config = _config(variant, "vae")
    config.update(
        block_out_channels=[32] * (levels - 1) + [64],
        down_block_types=["DownEncoderBlock2D"] * levels,
        up_block_types=["UpDecoderBlock2D"] * levels,
        layers_per_block=1,
    )
    return AutoencoderKL.from_config(config)


def _text_encoder(
    variant: Variant, component: str = "text_encoder"
) -> CLIPTextModel | CLIPTextModelWithProjection:
    config = _config(variant, component)
    config.update(
        hidden_size=TEXT_WIDTH, intermediate_size=2 * TEXT_WIDTH, num_hidden_layers=2, num_attention_heads=1
    )
    if component == "text_encoder_2":
        config.update(projection_dim=TEXT_WIDTH)
        return CLIPTextModelWithProjection(CLIPTextConfig.from_dict(config))
    return CLIPTextModel(CLIPTextConfig.from_dict(config))


def _tokenizer(variant: Variant, component: str = "tokenizer") -> CLIPTokenizer:
    pad = _config(variant, component, "tokenizer_config.json")["pad_token"]
    return CLIPTokenizer.from_pretrained(
        TOKENIZER_DIR, local_files_only=True, pad_token=pad, model_max_length=77
    )


def _scheduler(variant: Variant) -> Any:
    config = _config(variant, "scheduler", "scheduler_config.json")
    return getattr(diffusers_schedulers, config["_class_name"]).from_config(config)


def tiny_pipeline(
    variant: Variant = "sd1", seed: int = 0, vae_levels: int = 2, full_resolution_attention: bool = True
) -> DiffusionPipeline:
    """A freshly initialised tiny pipeline of the variant ("sd1", "sd2", "sd2-v", "sdxl", "sd1-inpaint",
    "sdxl-inpaint" or "sdxl-refiner"; the inpainting ones come as diffusers' inpaint pipelines, the refiner as
    the SDXL img2img pipeline with OpenCLIP-G alone).

    `vae_levels` 2 gives 2x latents (cheap tests at 64x64); 4 gives SD's 8x (cheap at 512x512).

    The "sd2-v" UNet's output bias is pushed to -3 so that it answers like a v-prediction model."""
    torch.manual_seed(seed)
    unet, vae = _unet(variant, full_resolution_attention), _vae(variant, vae_levels)
    if variant == "sd2-v":
        with torch.no_grad():
            unet.conv_out.bias.fill_(-3.0)
    inpainting = variant.endswith("-inpaint")
    if variant == "sdxl-refiner":
        return StableDiffusionXLImg2ImgPipeline(
            vae=vae,
            text_encoder=None,
            text_encoder_2=_text_encoder(variant, "text_encoder_2"),
            tokenizer=None,
            tokenizer_2=_tokenizer(variant, "tokenizer_2"),
            unet=unet,
            scheduler=_scheduler(variant),
            requires_aesthetics_score=True,
            force_zeros_for_empty_prompt=False,
            add_watermarker=False,
        )
    if variant.startswith("sdxl"):
        return (StableDiffusionXLInpaintPipeline if inpainting else StableDiffusionXLPipeline)(
            vae=vae,
            text_encoder=_text_encoder(variant),
            text_encoder_2=_text_encoder(variant, "text_encoder_2"),
            tokenizer=_tokenizer(variant),
            tokenizer_2=_tokenizer(variant, "tokenizer_2"),
            unet=unet,
            scheduler=_scheduler(variant),
            add_watermarker=False,
        )
    return (StableDiffusionInpaintPipeline if inpainting else StableDiffusionPipeline)(
        vae=vae,
        text_encoder=_text_encoder(variant),
        tokenizer=_tokenizer(variant),
        unet=unet,
        scheduler=_scheduler(variant),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


@dataclass(frozen=True)
class TinyCheckpoint:
    path: Path  # the single-file checkpoint
    pipe: DiffusionPipeline  # the pipeline it was written from


def build_tiny_checkpoint(
    path: str | Path,
    variant: Variant = "sd1",
    seed: int = 0,
    metadata: dict[str, str] | None = None,
    full_resolution_attention: bool = True,
) -> TinyCheckpoint:
    """Build the tiny pipeline and write it as one .safetensors file (creating the folder).

    `full_resolution_attention=False` (SD1/SD2 shapes): attention at the lower UNet level only, several
    times faster where only the images' identity matters."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pipe = tiny_pipeline(variant, seed, full_resolution_attention=full_resolution_attention)
    return TinyCheckpoint(save_ldm_checkpoint(pipe, path, metadata), pipe)


def save_tiny_checkpoint(
    path: str | Path, variant: Variant = "sd1", seed: int = 0, metadata: dict[str, str] | None = None
) -> Path:
    """Like build_tiny_checkpoint, for callers that only need the file."""
    return build_tiny_checkpoint(path, variant, seed, metadata).path


# UNet modules the test LoRAs train, in diffusers names and in the LDM names kohya writes for SD1
UNET_TARGETS = {
    "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q": (
        "input_blocks_1_1_transformer_blocks_0_attn1_to_q"
    ),
    "down_blocks.0.attentions.1.proj_in": "input_blocks_2_1_proj_in",
    "down_blocks.0.downsamplers.0.conv": "input_blocks_3_0_op",
    "down_blocks.1.resnets.0.conv1": "input_blocks_4_0_in_layers_2",
    "down_blocks.1.resnets.1.time_emb_proj": "input_blocks_5_0_emb_layers_1",
    "mid_block.attentions.0.transformer_blocks.0.attn2.to_k": (
        "middle_block_1_transformer_blocks_0_attn2_to_k"
    ),
    "mid_block.resnets.1.conv2": "middle_block_2_out_layers_3",
    "up_blocks.0.upsamplers.0.conv": "output_blocks_2_1_conv",
    "up_blocks.1.resnets.0.conv_shortcut": "output_blocks_3_0_skip_connection",
    "up_blocks.1.attentions.2.transformer_blocks.0.ff.net.2": (
        "output_blocks_5_1_transformer_blocks_0_ff_net_2"
    ),
}


def kohya_lora(pipe: object, seed: int, ldm_names: bool = False, unet: bool = True, te: bool = True) -> dict:
    """A rank-4 kohya LoRA (lora_down/lora_up/alpha) for the UNet targets and every text-encoder linear."""
    generator = torch.Generator().manual_seed(seed)
    modules: list[tuple[str, torch.nn.Module]] = []
    if unet:
        for name, module in pipe.unet.named_modules():
            if name in UNET_TARGETS:
                kohya = UNET_TARGETS[name] if ldm_names else name.replace(".", "_")
                modules.append(("lora_unet_" + kohya, module))
    if te:
        for name, module in pipe.text_encoder.named_modules():
            if isinstance(module, torch.nn.Linear):
                modules.append(("lora_te_text_model_" + name.replace(".", "_"), module))
    state = {}
    for key, module in modules:
        shape = module.weight.shape
        up_shape = (shape[0], 4, 1, 1) if len(shape) == 4 else (shape[0], 4)
        state[f"{key}.lora_down.weight"] = torch.randn((4, *shape[1:]), generator=generator) * 0.5
        state[f"{key}.lora_up.weight"] = torch.randn(up_shape, generator=generator) * 0.5
        state[f"{key}.alpha"] = torch.tensor(2.0)
    return state
