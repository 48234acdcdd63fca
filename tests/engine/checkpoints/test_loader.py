"""Single-file loading: exact weights, detection, a working pipeline, and clear refusals of bad files."""

from __future__ import annotations

import os
import shutil
import sys
import types
from pathlib import Path

import numpy
import pytest
import torch
from safetensors.torch import save_file

from tools.tiny_models import TinyCheckpoint, save_tiny_checkpoint
from webui.core import samplers
from webui.core.errors import ModelLoadError
from webui.engine.checkpoints import ldm_layout
from webui.engine.checkpoints.loader import (
    Architecture,
    LoadedCheckpoint,
    answers_like_v_model,
    detect_architecture,
    load_checkpoint,
)
from webui.engine.checkpoints.weights_files import read_metadata, read_state_dict
from webui.engine.sampling.schedulers import TERMINAL_ALPHA_BAR, make_scheduler

CPU = torch.device("cpu")
EXPECTED = {
    "sd1": Architecture("sd1", "epsilon", False, 512),
    "sd2": Architecture("sd2", "epsilon", False, 512),
    "sd2-v": Architecture("sd2", "v_prediction", False, 768),
    "sdxl": Architecture("sdxl", "epsilon", False, 1024),
}


def load(path: Path) -> LoadedCheckpoint:
    return load_checkpoint(path, CPU, torch.float32)


@pytest.fixture(scope="module")
def loaded(tiny_checkpoints: dict[str, TinyCheckpoint]) -> dict[str, LoadedCheckpoint]:
    return {variant: load(tiny.path) for variant, tiny in tiny_checkpoints.items()}


def config_of(module: torch.nn.Module) -> dict:
    config = module.config
    return config.to_dict() if hasattr(config, "to_dict") else dict(config)  # transformers / diffusers


def components(pipe) -> dict[str, torch.nn.Module]:
    names = ("unet", "vae", "text_encoder", "text_encoder_2")
    return {n: getattr(pipe, n) for n in names if getattr(pipe, n, None) is not None}


@pytest.mark.parametrize("variant", list(EXPECTED))
def test_loaded_weights_and_configs_equal_the_originals(
    variant: str, tiny_checkpoints: dict[str, TinyCheckpoint], loaded: dict[str, LoadedCheckpoint]
) -> None:
    original, result = components(tiny_checkpoints[variant].pipe), components(loaded[variant].pipe)
    assert sorted(result) == sorted(original)
    for name, module in original.items():
        expected, actual = module.state_dict(), result[name].state_dict()
        assert sorted(actual) == sorted(expected), name
        assert all(torch.equal(actual[k], expected[k]) for k in expected), name
        assert config_of(result[name]) == config_of(module), name


@pytest.mark.parametrize("variant", list(EXPECTED))
def test_architecture_is_detected_from_the_tensors(variant: str, loaded: dict[str, LoadedCheckpoint]) -> None:
    result = loaded[variant]
    assert result.architecture == EXPECTED[variant]
    assert result.pipe.scheduler.config.prediction_type == EXPECTED[variant].prediction_type
    assert (
        result.pipe.unet.config.sample_size * result.pipe.vae_scale_factor == EXPECTED[variant].default_size
    )
    expected_pipe = "StableDiffusionXLPipeline" if variant == "sdxl" else "StableDiffusionPipeline"
    assert type(result.pipe).__name__ == expected_pipe
    assert getattr(result.pipe, "safety_checker", None) is None


def test_v_model_check_tells_the_sd2_variants_apart(
    tiny_sd2: TinyCheckpoint, tiny_sd2_v: TinyCheckpoint
) -> None:
    assert answers_like_v_model(tiny_sd2_v.pipe.unet)
    assert not answers_like_v_model(tiny_sd2.pipe.unet)
    # without a prebuilt UNet, detection builds one from the tensors
    assert detect_architecture(read_state_dict(tiny_sd2_v.path)).prediction_type == "v_prediction"
    assert detect_architecture(read_state_dict(tiny_sd2.path)).prediction_type == "epsilon"


def test_v_upcast_attention_comes_with_v_prediction(loaded: dict[str, LoadedCheckpoint]) -> None:
    assert loaded["sd2-v"].pipe.unet.config.upcast_attention is True
    assert loaded["sd2"].pipe.unet.config.upcast_attention is False


def test_sidecar_yaml_decides_the_prediction_type(
    tiny_sd2: TinyCheckpoint, tiny_sd2_v: TinyCheckpoint, tmp_path: Path
) -> None:
    eps_file = Path(shutil.copy(tiny_sd2.path, tmp_path / "said-v.safetensors"))
    eps_file.with_suffix(".yaml").write_text('model:\n  params:\n    parameterization: "v"\n')
    assert load(eps_file).architecture.prediction_type == "v_prediction"
    v_file = Path(shutil.copy(tiny_sd2_v.path, tmp_path / "said-eps.safetensors"))
    v_file.with_suffix(".yaml").write_text("model:\n  params:\n    linear_start: 0.00085\n")
    result = load(v_file)
    assert (result.architecture.prediction_type, result.architecture.default_size) == ("epsilon", 512)


def test_safetensors_metadata_decides_the_prediction_type(tmp_path: Path) -> None:
    path = save_tiny_checkpoint(
        tmp_path / "meta.safetensors", "sd2", metadata={"modelspec.prediction_type": "v"}
    )
    assert read_metadata(path)["modelspec.prediction_type"] == "v"
    assert load(path).architecture == EXPECTED["sd2-v"]


def test_tokenizers_are_the_real_clip_vocabulary(loaded: dict[str, LoadedCheckpoint]) -> None:
    ids = [49406, 320, 1125, 539, 320, 2368, 49407]
    sd1, sd2, sdxl = loaded["sd1"].pipe, loaded["sd2"].pipe, loaded["sdxl"].pipe
    for tokenizer in (sd1.tokenizer, sd2.tokenizer, sdxl.tokenizer, sdxl.tokenizer_2):
        assert tokenizer("a photo of a cat").input_ids == ids
        assert len(tokenizer) == 49408 and tokenizer.model_max_length == 77
    padded = {
        name: tok("a cat", padding="max_length").input_ids
        for name, tok in {
            "sd1": sd1.tokenizer,
            "sd2": sd2.tokenizer,
            "xl1": sdxl.tokenizer,
            "xl2": sdxl.tokenizer_2,
        }.items()
    }
    assert {name: (len(p), p[-1]) for name, p in padded.items()} == {
        "sd1": (77, 49407),
        "sd2": (77, 0),
        "xl1": (77, 49407),
        "xl2": (77, 0),  # OpenCLIP pads with "!"
    }


@pytest.mark.parametrize("variant", ["sd1", "sdxl"])
def test_loaded_pipeline_paints_the_same_image(
    variant: str, tiny_checkpoints: dict[str, TinyCheckpoint], loaded: dict[str, LoadedCheckpoint]
) -> None:
    def paint(pipe) -> numpy.ndarray:
        pipe.set_progress_bar_config(disable=True)
        generator = torch.Generator().manual_seed(7)
        return pipe(
            "a red cube",
            negative_prompt="blurry",
            num_inference_steps=2,
            height=32,
            width=32,
            guidance_scale=5.0,
            generator=generator,
            output_type="np",
        ).images[0]

    expected, actual = paint(tiny_checkpoints[variant].pipe), paint(loaded[variant].pipe)
    assert expected.shape == (32, 32, 3) and expected.std() > 0
    numpy.testing.assert_array_equal(actual, expected)


def test_loads_to_the_requested_dtype(tiny_sd1_checkpoint: Path) -> None:
    pipe = load_checkpoint(tiny_sd1_checkpoint, CPU, torch.bfloat16).pipe
    dtypes = {p.dtype for module in components(pipe).values() for p in module.parameters()}
    assert dtypes == {torch.bfloat16}
    assert pipe.text_encoder.embeddings.position_ids.dtype == torch.int64


def _fake_lightning(monkeypatch: pytest.MonkeyPatch) -> type:
    """Old .ckpt files pickle Lightning's ModelCheckpoint callback; fake the module to write one."""
    names = [
        "pytorch_lightning",
        "pytorch_lightning.callbacks",
        "pytorch_lightning.callbacks.model_checkpoint",
    ]
    for name in names:
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    callback = type("ModelCheckpoint", (), {"__module__": names[-1]})
    sys.modules[names[-1]].ModelCheckpoint = callback
    return callback


def test_ckpt_is_read_weights_only(
    tiny_sd1: TinyCheckpoint, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    callback = _fake_lightning(monkeypatch)
    state = callback()
    state.best_model_score = torch.tensor(0.5)
    path = tmp_path / "lightning.ckpt"
    torch.save(
        {
            "state_dict": read_state_dict(tiny_sd1.path),
            "global_step": numpy.int64(470000),
            "callbacks": {callback: state},
        },
        path,
    )
    monkeypatch.undo()  # loading must not need the module

    result = load(path)
    assert result.architecture == EXPECTED["sd1"]
    expected = tiny_sd1.pipe.unet.state_dict()
    assert all(torch.equal(result.pipe.unet.state_dict()[k], expected[k]) for k in expected)


class _RunsCode:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_pickle_that_runs_code_is_refused_without_running_it(
    tiny_sd1: TinyCheckpoint, tmp_path: Path
) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": read_state_dict(tiny_sd1.path), "payload": _RunsCode(marker)}, path)
    with pytest.raises(ModelLoadError, match=r"evil\.ckpt: refused .* run code \(posix\.system\)"):
        load(path)
    assert not marker.exists()


def _bad_files(directory: Path, good: Path) -> dict[str, tuple[Path, str]]:
    data = good.read_bytes()
    files = {
        "truncated.safetensors": (data[: len(data) // 2], "not a valid safetensors file"),
        "noise.safetensors": (os.urandom(4096), "not a valid safetensors file"),
        "empty.safetensors": (b"", "not a valid safetensors file"),
        "noise.ckpt": (os.urandom(4096), "not a readable PyTorch checkpoint"),
        "notes.ckpt": (b"these are my notes\n", "not a readable PyTorch checkpoint"),
        "model.onnx": (b"onnx", "unsupported checkpoint type"),
    }
    for name, (content, _) in files.items():
        (directory / name).write_bytes(content)
    return {name: (directory / name, message) for name, (_, message) in files.items()}


def test_corrupt_and_foreign_files_are_refused_by_name(tiny_sd1: TinyCheckpoint, tmp_path: Path) -> None:
    for name, (path, message) in _bad_files(tmp_path, tiny_sd1.path).items():
        with pytest.raises(ModelLoadError) as caught:
            load(path)
        assert name in str(caught.value) and message in str(caught.value), str(caught.value)
    with pytest.raises(ModelLoadError, match="not found"):
        load(tmp_path / "missing.safetensors")


def _saved(path: Path, tensors: dict[str, torch.Tensor]) -> Path:
    save_file(tensors, str(path))
    return path


def test_unknown_architectures_say_what_was_recognised(tiny_sdxl: TinyCheckpoint, tmp_path: Path) -> None:
    sdxl = read_state_dict(tiny_sdxl.path)
    refiner = {
        k.replace("conditioner.embedders.1.", "conditioner.embedders.0."): v
        for k, v in sdxl.items()
        if not k.startswith("conditioner.embedders.0.")
    }
    sd3_like = {
        "model.diffusion_model.joint_blocks.0.context_block.adaLN_modulation.1.bias": torch.zeros(4),
        "first_stage_model.encoder.conv_in.weight": torch.zeros(8, 3, 3, 3),
    }
    cases = {
        "noise.safetensors": ({"weight": torch.randn(4, 4), "bias": torch.randn(4)}, "none of its 2 tensors"),
        "refiner.safetensors": (refiner, "SDXL-refiner layout"),
        "sd3.safetensors": (sd3_like, "recognised: VAE"),
    }
    for name, (tensors, recognised) in cases.items():
        with pytest.raises(ModelLoadError, match="unknown architecture") as caught:
            load(_saved(tmp_path / name, tensors))
        assert name in str(caught.value) and recognised in str(caught.value), str(caught.value)


def test_inpainting_unet_is_recognised(tiny_sd1: TinyCheckpoint, tmp_path: Path) -> None:
    sd = read_state_dict(tiny_sd1.path)
    key = ldm_layout.UNET_PREFIX + "input_blocks.0.0.weight"
    sd[key] = torch.cat([sd[key], torch.zeros(sd[key].shape[0], 5, 3, 3)], dim=1)
    result = load(_saved(tmp_path / "inpaint.safetensors", sd))
    assert result.architecture == Architecture("sd1", "epsilon", True, 512)
    assert result.pipe.unet.config.in_channels == 9


def test_incomplete_surplus_or_misshapen_tensors_are_refused(
    tiny_sd1: TinyCheckpoint, tmp_path: Path
) -> None:
    sd = read_state_dict(tiny_sd1.path)
    key = ldm_layout.UNET_PREFIX + "middle_block.1.proj_out.weight"
    cases = {
        "missing.safetensors": (
            {k: v for k, v in sd.items() if k != key},
            f"UNet is incomplete: 1 tensors missing, e.g. {key}",
        ),
        "surplus.safetensors": (
            {**sd, "lora_unet_extra.weight": torch.zeros(2)},
            "belong to no component, e.g. lora_unet_extra",
        ),
        "misshapen.safetensors": ({**sd, key: torch.zeros(3, 3, 1, 1)}, "UNet weights do not fit"),
    }
    for name, (tensors, message) in cases.items():
        with pytest.raises(ModelLoadError) as caught:
            load(_saved(tmp_path / name, tensors))
        assert str(caught.value).startswith(name) and message in str(caught.value), str(caught.value)


def test_v_pred_marker_tensor_marks_an_sdxl_v_model(tiny_sdxl: TinyCheckpoint, tmp_path: Path) -> None:
    sd = {**read_state_dict(tiny_sdxl.path), "v_pred": torch.tensor([])}
    result = load(_saved(tmp_path / "xl-v.safetensors", sd))
    assert result.architecture == Architecture("sdxl", "v_prediction", False, 1024)
    assert result.pipe.scheduler.config.prediction_type == "v_prediction"


def test_ztsnr_marker_gives_every_sampler_the_zero_terminal_snr_schedule(
    tiny_sd1: TinyCheckpoint, tmp_path: Path
) -> None:
    sd = {**read_state_dict(tiny_sd1.path), "ztsnr": torch.tensor([])}
    result = load(_saved(tmp_path / "zsnr.safetensors", sd))
    assert result.architecture.zero_terminal_snr
    assert not load(tiny_sd1.path).architecture.zero_terminal_snr
    for name in ("Euler", "Heun", "DPM++ 2M"):  # Heun has no rescale_betas_zero_snr option of its own
        scheduler = make_scheduler(samplers.resolve(name), result.pipe.scheduler.config)
        scheduler.set_timesteps(20)
        assert scheduler.alphas_cumprod[-1].item() == pytest.approx(TERMINAL_ALPHA_BAR, rel=1e-3), name
        assert scheduler.sigmas.max().item() == pytest.approx(TERMINAL_ALPHA_BAR**-0.5, rel=1e-3), name
