"""The demo model family's architectures: the SD 1.x component types at small sizes.

Every component is built from the web UI's bundled SD1 configs with only the sizes changed, so the
exported checkpoint fits the loader's SD1 family detection (text width a multiple of 64, the full CLIP
vocabulary, channels in groups of 32) and loads exactly like a real SD 1.5 file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from diffusers import AutoencoderKL, ControlNetModel, DDPMScheduler, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from webui.engine.checkpoints.components import CONFIGS, TOKENIZER_DIR
from webui.engine.sampling.schedulers import zero_terminal_snr_betas

SD1 = CONFIGS / "sd1"


@dataclass(frozen=True)
class Sizes:
    """Widths and depths of the model family (the only things that differ from SD 1.5)."""

    vae_channels: tuple[int, ...]  # len - 1 = downsampling steps: 3 levels give 64x64 -> 16x16 latents
    vae_layers: int
    unet_channels: tuple[int, ...]
    unet_attention: tuple[bool, ...]  # cross-attention at each UNet level
    unet_layers: int
    text_width: int  # a multiple of 64: the loader derives CLIP's heads as width // 64
    text_layers: int
    control_embedding: tuple[int, ...]  # ControlNet hint encoder; as many entries as VAE levels


# Chosen from measured CPU figures (see tools/demo_model/README.md): trains in ~2 h on 2 cores and
# samples a 20-step CFG image at 64x64 in well under a second.
FULL = Sizes(
    vae_channels=(32, 64, 64),
    vae_layers=1,
    unet_channels=(32, 64, 96, 128),
    unet_attention=(False, True, True, True),  # none at 16x16: 256-token attention costs most on a CPU
    unet_layers=1,
    text_width=128,
    text_layers=3,
    control_embedding=(16, 32, 64),
)
# The smallest family the loader accepts: for smoke tests.
TINY = Sizes(
    vae_channels=(32, 32, 32),
    vae_layers=1,
    unet_channels=(32, 32, 32, 32),
    unet_attention=(False, True, True, True),
    unet_layers=1,
    text_width=64,
    text_layers=1,
    control_embedding=(16, 16, 32),
)
PRESETS = {"full": FULL, "tiny": TINY}


def _config(component: str, file: str = "config.json") -> dict[str, Any]:
    return json.loads((SD1 / component / file).read_text(encoding="utf-8"))


def build_vae(sizes: Sizes) -> AutoencoderKL:
    config = _config("vae")
    levels = len(sizes.vae_channels)
    config.update(
        block_out_channels=list(sizes.vae_channels),
        down_block_types=["DownEncoderBlock2D"] * levels,
        up_block_types=["UpDecoderBlock2D"] * levels,
        layers_per_block=sizes.vae_layers,
        sample_size=64,
        # purely convolutional (no attention in the middle block): trains on crops exactly as it runs on
        # whole images, and flat shapes need no global mixing
        mid_block_add_attention=False,
    )
    return AutoencoderKL.from_config(config)


def build_unet(sizes: Sizes) -> UNet2DConditionModel:
    config = _config("unet")
    down = ["CrossAttnDownBlock2D" if a else "DownBlock2D" for a in sizes.unet_attention]
    up = ["CrossAttnUpBlock2D" if a else "UpBlock2D" for a in reversed(sizes.unet_attention)]
    config.update(
        block_out_channels=list(sizes.unet_channels),
        down_block_types=down,
        up_block_types=up,
        layers_per_block=sizes.unet_layers,
        cross_attention_dim=sizes.text_width,
        sample_size=64 // 2 ** (len(sizes.vae_channels) - 1),
    )
    return UNet2DConditionModel.from_config(config)


def build_text_encoder(sizes: Sizes) -> CLIPTextModel:
    config = _config("text_encoder")
    config.update(
        hidden_size=sizes.text_width,
        intermediate_size=4 * sizes.text_width,
        num_hidden_layers=sizes.text_layers,
        num_attention_heads=sizes.text_width // 64,
        projection_dim=sizes.text_width,
    )
    return CLIPTextModel(CLIPTextConfig.from_dict(config))


def build_controlnet(unet: UNet2DConditionModel, sizes: Sizes) -> ControlNetModel:
    """A ControlNet copied from the trained UNet (zero-initialised outputs: starts as a no-op)."""
    return ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=sizes.control_embedding)


def load_tokenizer() -> CLIPTokenizer:
    """The real CLIP tokenizer (bundled with the web UI), padded with EOS as SD1 pads."""
    settings = _config("tokenizer", "tokenizer_config.json")
    return CLIPTokenizer.from_pretrained(
        TOKENIZER_DIR, local_files_only=True, pad_token=settings["pad_token"], model_max_length=77
    )


def noise_scheduler(prediction_type: str, zero_terminal_snr: bool) -> DDPMScheduler:
    """SD 1.x's own training schedule (scaled linear betas), so the loader's bundled scheduler matches;
    with `zero_terminal_snr`, the same betas rescaled exactly as the loader rescales them for a model
    marked `ztsnr`."""
    config = _config("scheduler", "scheduler_config.json")
    keep = {"beta_start", "beta_end", "beta_schedule", "num_train_timesteps", "steps_offset", "clip_sample"}
    config = {k: v for k, v in config.items() if k in keep}
    if zero_terminal_snr:
        config["trained_betas"] = zero_terminal_snr_betas(config)
    return DDPMScheduler.from_config(config, prediction_type=prediction_type)
