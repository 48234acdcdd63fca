"""SDXL refiner single-file checkpoints: recognised from their tensors (OpenCLIP-G alone as the first
embedder, a UNet whose label embedding takes the pooled text + 5 numbers), loaded offline with the bundled
sdxl-refiner config into diffusers' refiner pipeline, weights exact; the bundled config fits the real
refiner's tensor layout (built on the meta device: nothing is allocated)."""

from __future__ import annotations

import json

import pytest
import torch
from accelerate import init_empty_weights
from diffusers import UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModelWithProjection

from tools.tiny_models import TinyCheckpoint, build_tiny_checkpoint
from webui.engine.checkpoints import architecture, ldm_configs, ldm_layout
from webui.engine.checkpoints.components import CONFIGS
from webui.engine.checkpoints.loader import load_checkpoint
from webui.engine.checkpoints.weights_files import open_state_dict, shapes_of

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def tiny_refiner(tmp_path_factory: pytest.TempPathFactory) -> TinyCheckpoint:
    return build_tiny_checkpoint(
        tmp_path_factory.mktemp("refiner") / "tiny-refiner.safetensors", "sdxl-refiner"
    )


def test_the_file_is_in_the_refiner_layout(tiny_refiner: TinyCheckpoint) -> None:
    keys = set(shapes_of(open_state_dict(tiny_refiner.path)))
    assert "conditioner.embedders.0.model.token_embedding.weight" in keys
    assert "conditioner.embedders.0.model.text_projection" in keys
    assert not any(
        key.startswith(("conditioner.embedders.0.transformer.", "conditioner.embedders.1.")) for key in keys
    )


def test_a_tiny_refiner_is_recognised_and_loads_exactly(tiny_refiner: TinyCheckpoint) -> None:
    loaded = load_checkpoint(tiny_refiner.path, CPU, torch.float32)
    assert loaded.architecture.refiner and loaded.architecture.family == "sdxl"
    assert loaded.architecture.config_name == "sdxl-refiner"
    pipe = loaded.pipe
    assert type(pipe).__name__ == "StableDiffusionXLImg2ImgPipeline"
    assert pipe.text_encoder is None and pipe.tokenizer is None and pipe.config.requires_aesthetics_score
    for name in ("unet", "vae", "text_encoder_2"):
        original, read = getattr(tiny_refiner.pipe, name).state_dict(), getattr(pipe, name).state_dict()
        assert original.keys() == read.keys()
        assert all(torch.equal(original[key], read[key]) for key in original), name
    # the refiner's UNet conditions on 5 numbers beside the pooled text, as the real one
    config = pipe.unet.config
    assert config.projection_class_embeddings_input_dim - 32 == 5 * config.addition_time_embed_dim


def test_the_refiner_runs_img2img_with_its_aesthetic_score(tiny_refiner: TinyCheckpoint) -> None:
    pipe = load_checkpoint(tiny_refiner.path, CPU, torch.float32).pipe
    pipe.set_progress_bar_config(disable=True)
    image = torch.zeros(1, 3, 64, 64)
    out = pipe(prompt="a cat", image=image, strength=0.5, num_inference_steps=2, output_type="latent")
    assert out.images.shape == (1, 4, 32, 32) and torch.isfinite(out.images).all()


def test_the_bundled_refiner_config_fits_the_real_refiner_layout() -> None:
    """The real SDXL refiner's UNet and OpenCLIP-G, built on the meta device from the bundled config and
    written in the LDM layout, are recognised and fitted back to the same config."""
    folder = CONFIGS / "sdxl-refiner"
    unet_config = json.loads((folder / "unet" / "config.json").read_text())
    text_config = json.loads((folder / "text_encoder_2" / "config.json").read_text())
    with init_empty_weights():
        unet = UNet2DConditionModel.from_config(unet_config)
        text = CLIPTextModelWithProjection(CLIPTextConfig.from_dict(text_config))
    sd = ldm_layout.to_ldm(unet.state_dict(), ldm_layout.unet_layout(unet.state_dict()))
    text_sd = text.state_dict()
    sd |= ldm_layout.to_ldm(
        text_sd, ldm_layout.open_clip_layout(text_sd, ldm_layout.SDXL_REFINER_CLIP_PREFIX)
    )
    sd["first_stage_model.encoder.conv_in.weight"] = torch.empty(128, 3, 3, 3, device="meta")  # SDXL's VAE
    assert architecture.is_refiner(sd) and architecture.family_of(sd) == "sdxl"
    fitted = ldm_configs.fit_unet_config(sd, unet_config, 128, pooled_dim=1280, time_ids=5)
    for key in (
        "block_out_channels", "down_block_types", "up_block_types", "attention_head_dim",
        "cross_attention_dim", "projection_class_embeddings_input_dim", "addition_time_embed_dim",
        "layers_per_block",
    ):  # fmt: skip
        assert fitted[key] == unet_config[key], key
    # the mid block's 4 transformer layers: diffusers reads them from the last level's entry
    assert fitted["transformer_layers_per_block"][-1] == 4
