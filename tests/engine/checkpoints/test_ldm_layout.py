"""The diffusers -> LDM converter writes the layout real SD1/SD2/SDXL files have.

Checked two ways: diffusers' own single-file readers (written against real checkpoints) turn our files
back into the exact original tensors; and the full-size bundled configs, built on the meta device and
converted, have the key counts, detection keys and shapes of the real models.
"""

from __future__ import annotations

import json
import types

import pytest
import torch
from accelerate import init_empty_weights
from diffusers import AutoencoderKL, UNet2DConditionModel
from diffusers.loaders.single_file_utils import (
    convert_ldm_clip_checkpoint,
    convert_ldm_unet_checkpoint,
    convert_ldm_vae_checkpoint,
    convert_open_clip_checkpoint,
    infer_diffusers_model_type,
)
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

from tools.tiny_models import TinyCheckpoint, save_tiny_checkpoint
from webui.engine.checkpoints import components, ldm_export, ldm_layout
from webui.engine.checkpoints.loader import detect_architecture
from webui.engine.checkpoints.weights_files import read_state_dict


def assert_same_tensors(actual: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert sorted(actual) == sorted(expected)
    different = [k for k in expected if not torch.equal(actual[k], expected[k])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"


def _without_text_model(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k.removeprefix("text_model."): v for k, v in tensors.items() if not k.endswith("position_ids")}


@pytest.mark.parametrize("variant", ["sd1", "sd2", "sdxl"])
def test_diffusers_single_file_readers_recover_the_original_tensors(
    variant: str, tiny_checkpoints: dict[str, TinyCheckpoint]
) -> None:
    tiny = tiny_checkpoints[variant]
    sd, pipe = read_state_dict(tiny.path), tiny.pipe
    assert_same_tensors(convert_ldm_unet_checkpoint(sd, dict(pipe.unet.config)), pipe.unet.state_dict())
    assert_same_tensors(convert_ldm_vae_checkpoint(sd, dict(pipe.vae.config)), pipe.vae.state_dict())
    text = pipe.text_encoder.state_dict()
    if variant == "sd2":  # diffusers' encoder stops at the penultimate block, the file holds one more
        read = _without_text_model(convert_open_clip_checkpoint(pipe.text_encoder, sd))
        assert_same_tensors({k: read[k] for k in text}, text)
        assert f"encoder.layers.{pipe.text_encoder.config.num_hidden_layers}.mlp.fc1.weight" in read
    else:
        assert_same_tensors(_without_text_model(convert_ldm_clip_checkpoint(sd)), text)
    if variant == "sdxl":
        read = convert_open_clip_checkpoint(pipe.text_encoder_2, sd, prefix=ldm_layout.SDXL_CLIP_G_PREFIX)
        assert_same_tensors(read, pipe.text_encoder_2.state_dict())


def _bundled(variant: str, component: str) -> dict:
    return json.loads((components.CONFIGS / variant / component / "config.json").read_text())


# Tensor counts of the real files' components (UNet, VAE, first and second text encoder).
REAL_KEY_COUNTS = {
    "sd1": {"model.diffusion_model.": 686, "first_stage_model.": 248, "cond_stage_model.": 197},
    "sd2": {"model.diffusion_model.": 686, "first_stage_model.": 248, "cond_stage_model.": 294},
    "sdxl": {
        "model.diffusion_model.": 1680,
        "first_stage_model.": 248,
        "conditioner.embedders.0.": 197,
        "conditioner.embedders.1.": 390,
    },
}


@pytest.mark.parametrize(
    ("variant", "diffusers_type", "size"),
    [("sd1", "v1", 512), ("sd2", "v2", 512), ("sd2-v", "v2", 768), ("sdxl", "xl_base", 1024)],
)
def test_full_size_configs_survive_conversion_and_fitting(
    variant: str, diffusers_type: str, size: int
) -> None:
    """Full-size models on the meta device (no memory): converted to the LDM layout, the family is
    detected and fitting the shapes reproduces the bundled configs exactly."""
    with init_empty_weights():
        unet = UNet2DConditionModel.from_config(_bundled(variant, "unet"))
        vae = AutoencoderKL.from_config(_bundled(variant, "vae"))
        text = CLIPTextModel(CLIPTextConfig.from_dict(_bundled(variant, "text_encoder")))
        text_2 = (
            CLIPTextModelWithProjection(CLIPTextConfig.from_dict(_bundled(variant, "text_encoder_2")))
            if variant == "sdxl"
            else None
        )
    pipe = types.SimpleNamespace(unet=unet, vae=vae, text_encoder=text, text_encoder_2=text_2)
    sd = ldm_export.pipeline_to_ldm_state_dict(pipe)

    family = "sd2" if variant == "sd2-v" else variant
    counts = {prefix: sum(k.startswith(prefix) for k in sd) for prefix in REAL_KEY_COUNTS[family]}
    assert counts == REAL_KEY_COUNTS[family]
    assert infer_diffusers_model_type(sd) == diffusers_type
    hint = {"modelspec.prediction_type": "v" if variant == "sd2-v" else "epsilon"}
    architecture = detect_architecture(sd, hint)
    assert (architecture.family, architecture.config_name, architecture.default_size) == (
        family,
        variant,
        size,
    )
    fitted = components.fit_configs(sd, variant, family)
    for component, config in fitted.items():
        assert config == _bundled(variant, component), component


def test_tiny_checkpoints_are_deterministic(tmp_path) -> None:
    first = save_tiny_checkpoint(tmp_path / "a.safetensors", "sd1", seed=0)
    again = save_tiny_checkpoint(tmp_path / "b.safetensors", "sd1", seed=0)
    other = save_tiny_checkpoint(tmp_path / "c.safetensors", "sd1", seed=1)
    assert first.read_bytes() == again.read_bytes()
    assert first.read_bytes() != other.read_bytes()


def test_sd2_file_holds_the_unused_last_block_as_an_identity(tiny_sd2: TinyCheckpoint) -> None:
    sd = read_state_dict(tiny_sd2.path)
    layers = tiny_sd2.pipe.text_encoder.config.num_hidden_layers
    block = f"{ldm_layout.SD2_CLIP_PREFIX}transformer.resblocks.{layers}."
    assert not sd[block + "attn.out_proj.weight"].any() and not sd[block + "mlp.c_proj.weight"].any()
    assert f"{ldm_layout.SD2_CLIP_PREFIX}transformer.resblocks.{layers + 1}.ln_1.weight" not in sd
    assert sd[f"{ldm_layout.SD2_CLIP_PREFIX}text_projection"].shape == (32, 32)
