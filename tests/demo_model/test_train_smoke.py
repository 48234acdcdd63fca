"""Every training stage for a few steps on the tiny sizes, the exports, and the files read back by the
web UI's loaders (checkpoint, ControlNet) and diffusers (kohya LoRA)."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from tools import train_demo_model
from tools.demo_model import evaluate as evaluation
from tools.demo_model import loop
from tools.demo_model.build import build
from tools.demo_model.config import STAGES, TrainConfig
from tools.demo_model.corpus import render_pixels, to_model_range
from tools.demo_model.data import sample_scenes, split_combos
from tools.demo_model.export import ExportedFiles, export_checkpoint, lora_to_kohya
from tools.demo_model.models import TINY, build_text_encoder, build_vae, noise_scheduler
from tools.demo_model.stages import first_step_loss
from tools.demo_model.vae_stage import standardize_latents
from webui.engine.checkpoints.loader import LoadedCheckpoint, load_checkpoint
from webui.engine.checkpoints.model_defaults import GenerationDefaults
from webui.engine.checkpoints.weights_files import read_metadata
from webui.engine.controlnet.load import load_controlnet

pytestmark = pytest.mark.usefixtures("one_torch_thread")

KOHYA_KEY = re.compile(r"lora_unet_[a-z0-9_]+\.(lora_down\.weight|lora_up\.weight|alpha)")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[TrainConfig, ExportedFiles]:
    root = tmp_path_factory.mktemp("demo-model")
    config = TrainConfig(
        work_dir=root / "work",
        sizes=TINY,
        batch_size=4,
        vae_batch_size=4,
        vae_steps=2,
        decoder_steps=2,
        unet_steps=3,
        layout_steps=2,
        settle_steps=2,
        controlnet_steps=2,
        lora_steps=3,
        vae_images=16,
        corpus_images=16,
        lora_images=8,
        warmup=1,
        log_every=1,
    )
    files = build(config, root / "models")
    assert files is not None
    return config, files


@pytest.fixture(scope="module")
def loaded(built: tuple[TrainConfig, ExportedFiles]) -> LoadedCheckpoint:
    """The exported checkpoint through the web UI's loader (shared: tests leave its pipe as they found it)."""
    return load_checkpoint(built[1].checkpoint, torch.device("cpu"), torch.float32)


def _final(folder: Path, prefix: str) -> dict[str, torch.Tensor]:
    return {
        k.removeprefix(prefix): v for k, v in load_file(folder / loop.FINAL).items() if k.startswith(prefix)
    }


def test_every_stage_finishes_and_exports(built: tuple[TrainConfig, ExportedFiles]) -> None:
    config, files = built
    for stage in STAGES:
        assert loop.is_done(config.work_dir / stage), stage
        assert torch.load(config.work_dir / stage / loop.CHECKPOINT, weights_only=True)["losses"]
    for path in (files.checkpoint, files.controlnet, files.lora):
        assert path.is_file() and path.stat().st_size > 1000
    assert files.checkpoint.parent.name == "Stable-diffusion" and files.lora.parent.name == "Lora"


def test_decoder_phase_trains_only_the_decoder(
    built: tuple[TrainConfig, ExportedFiles], loaded: LoadedCheckpoint
) -> None:
    """The cached latents stay valid: encoder and latent convs as the crop phase left them."""
    config = built[0]
    crops, finished = _final(config.work_dir / "vae", "vae."), _final(config.work_dir / "decoder", "vae.")
    assert crops.keys() == finished.keys()
    changed = {k for k in crops if not torch.equal(crops[k], finished[k])}
    assert changed and all(k.startswith("decoder.") for k in changed), changed
    exported = loaded.pipe.vae.state_dict()
    assert all(torch.equal(exported[k], finished[k].half().float()) for k in changed)


def test_checkpoint_loads_through_the_web_ui_loader(
    built: tuple[TrainConfig, ExportedFiles], loaded: LoadedCheckpoint
) -> None:
    config, files = built
    assert loaded.architecture.family == "sd1"
    assert loaded.architecture.prediction_type == "v_prediction"  # from the file's modelspec metadata
    assert loaded.architecture.zero_terminal_snr == config.zero_terminal_snr  # the file's ztsnr marker
    training = noise_scheduler(config.prediction_type, config.zero_terminal_snr)
    assert torch.allclose(loaded.pipe.scheduler.alphas_cumprod, training.alphas_cumprod), (
        "the loader's schedule differs from the one the model was trained with"
    )
    pipe = loaded.pipe
    assert tuple(pipe.unet.config.block_out_channels) == TINY.unet_channels
    assert pipe.text_encoder.config.hidden_size == TINY.text_width
    trained, before_layout = (
        _final(config.work_dir / "settle", "unet."),
        _final(config.work_dir / "unet", "unet."),
    )
    for name in ("conv_in.weight", "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.weight"):
        assert torch.equal(pipe.unet.state_dict()[name], trained[name].half().float()), name
        assert not torch.equal(trained[name], before_layout[name]), f"the layout stage left {name} as it was"
    metadata = read_metadata(files.checkpoint)
    assert metadata["modelspec.resolution"] == "64x64"
    assert json.loads(metadata["webui.default_params"])["width"] == 64
    assert loaded.defaults == GenerationDefaults(
        width=64, height=64, steps=20, cfg_scale=7.0, cfg_rescale=0.7
    )
    image = pipe(
        "a large red circle on the left, blue background",
        num_inference_steps=2,
        height=64,
        width=64,
        output_type="np",
    ).images[0]
    assert image.shape == (64, 64, 3)


def test_zero_terminal_snr_export_loads_with_the_training_schedule(
    loaded: LoadedCheckpoint, tmp_path: Path
) -> None:
    pipe = loaded.pipe
    path = export_checkpoint(
        tmp_path / "zsnr.safetensors", pipe.vae, pipe.unet, pipe.text_encoder, "v_prediction", True
    )
    zsnr = load_checkpoint(path, torch.device("cpu"), torch.float32)
    assert zsnr.architecture.zero_terminal_snr
    training = noise_scheduler("v_prediction", zero_terminal_snr=True)
    assert training.alphas_cumprod[-1].item() < 1e-6  # the rescaled schedule, not SD's 0.0047
    assert torch.allclose(zsnr.pipe.scheduler.alphas_cumprod, training.alphas_cumprod)


def test_controlnet_file_has_the_original_layout(
    built: tuple[TrainConfig, ExportedFiles], loaded: LoadedCheckpoint
) -> None:
    config, files = built
    state = load_file(files.controlnet)
    assert all(key.startswith("control_model.") for key in state)
    # the hint encoder's output conv: after 2 convs per level change, at an even index (SiLUs between)
    last_hint = 2 * (2 * (len(TINY.control_embedding) - 1) + 1)
    for key in (
        "input_hint_block.0.weight",
        f"input_hint_block.{last_hint}.weight",
        "zero_convs.0.0.weight",
        "middle_block_out.0.weight",
        "input_blocks.0.0.weight",
        "time_embed.0.weight",
        "middle_block.1.proj_in.weight",
    ):
        assert f"control_model.{key}" in state, key
    controlnet = load_controlnet(files.controlnet, loaded, torch.device("cpu"), torch.float32)
    assert tuple(controlnet.config.conditioning_embedding_out_channels) == TINY.control_embedding
    trained = _final(config.work_dir / "controlnet", "controlnet.")
    assert trained.keys() == controlnet.state_dict().keys()
    for name, tensor in controlnet.state_dict().items():
        assert torch.equal(tensor, trained[name].half().float()), name


def test_lora_file_is_kohya_and_changes_only_while_loaded(
    built: tuple[TrainConfig, ExportedFiles], loaded: LoadedCheckpoint
) -> None:
    _, files = built
    state = load_file(files.lora)
    assert state and all(KOHYA_KEY.fullmatch(key) for key in state)
    with safe_open(files.lora, framework="pt") as f:
        assert f.metadata()["ss_network_module"] == "networks.lora"
    pipe = loaded.pipe
    sample, timestep = (
        torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(0)),
        torch.tensor([500]),
    )
    context = torch.randn(1, 77, TINY.text_width, generator=torch.Generator().manual_seed(1))

    def unet_output() -> torch.Tensor:
        with torch.no_grad():
            return pipe.unet(sample, timestep, encoder_hidden_states=context).sample

    before = unet_output()
    pipe.load_lora_weights(state, adapter_name="pastel")
    assert not torch.allclose(unet_output(), before, atol=1e-6)
    pipe.unload_lora_weights()
    assert torch.equal(unet_output(), before)


def test_evaluation_runs_on_the_exported_files(
    built: tuple[TrainConfig, ExportedFiles], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(evaluation, "STEPS", 2)
    report = evaluation.evaluate(built[1], count=2, control_count=1, lora_count=1)
    assert set(report.accuracy) == {"color", "background", "position", "size", "shape"}
    assert all(0.0 <= value <= 1.0 for value in report.accuracy.values())
    assert 0.0 <= report.control_iou <= 1.0 and report.seconds_per_image > 0
    assert 0.0 <= report.plain_cfg_color <= 1.0 and report.edge_error >= 0.0
    assert set(report.checks()) == {
        *("color", "background", "position", "size", "shape", "plain_cfg_color", "edge_error"),
        *("control_iou", "lora", "speed"),
    }
    assert len(report.lines()) == 13
    assert report.vae.accuracy.keys() == report.accuracy.keys()
    with pytest.raises(ValueError, match="count"):
        evaluation.evaluate(built[1], count=1, control_count=2, lora_count=1)


def test_evaluation_uses_held_out_captions_only() -> None:
    cases = evaluation.eval_cases(seed=0, count=40)
    assert {case.combo for case in cases} <= set(split_combos(0).held_out)
    assert cases == evaluation.eval_cases(seed=0, count=40)
    assert len({case.seed for case in cases}) == 40
    # the ControlNet hint contradicts the caption's position, and changes nothing else
    for case in cases:
        assert case.scene.combo.position != case.combo.position
        assert dataclasses.replace(case.scene.combo, position=case.combo.position) == case.combo
    assert len({case.scene.combo.position for case in cases}) == 5


def test_interrupted_stage_resumes_to_the_same_weights(tmp_path: Path) -> None:
    """A run stopped after every step by its time cap ends with the exact weights of an uninterrupted run."""

    def train(folder: Path, minutes: float | None) -> tuple[loop.Outcome, torch.Tensor]:
        torch.manual_seed(0)
        model = torch.nn.Linear(3, 1)

        def step(generator: torch.Generator) -> torch.Tensor:
            x = torch.randn(8, 3, generator=generator)
            return (model(x) - x.sum(dim=1, keepdim=True)).pow(2).mean()

        schedule = loop.Schedule(steps=6, lr=0.1, warmup=2, save_every=100, log_every=3)
        outcome = loop.run(folder, {"model": model}, list(model.parameters()), schedule, step, 5, minutes)
        return outcome, model.weight.detach().clone()

    outcome, straight = train(tmp_path / "straight", None)
    assert outcome.finished and outcome.losses[-1] < outcome.losses[0]
    runs = 0
    while True:
        runs += 1
        outcome, resumed = train(tmp_path / "capped", 0.0)
        if outcome.finished:
            break
    assert runs == 6
    assert torch.equal(resumed, straight)


def test_standardized_vae_keeps_reconstructions_and_whitens_latents() -> None:
    torch.manual_seed(0)
    vae = build_vae(TINY).eval()
    pixels = render_pixels(sample_scenes(split_combos(0).train, 24, seed=1))
    images = to_model_range(pixels)
    with torch.no_grad():
        before = vae.decode(vae.encode(images).latent_dist.mean).sample
        standardize_latents(vae, pixels)
        latents = vae.encode(images).latent_dist.mean
        after = vae.decode(latents).sample
    assert torch.allclose(after, before, atol=1e-4)
    scaled = latents * vae.config.scaling_factor
    assert torch.allclose(scaled.mean(dim=(0, 2, 3)), torch.zeros(4), atol=1e-4)
    assert torch.allclose(scaled.std(dim=(0, 2, 3)), torch.ones(4), atol=1e-3)


@pytest.mark.parametrize("prediction_type", ["v_prediction", "epsilon"])
def test_first_step_loss_targets_the_clean_latent_from_pure_noise(prediction_type: str) -> None:
    scheduler = noise_scheduler(prediction_type, zero_terminal_snr=False)
    latents = torch.randn(3, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    kept = scheduler.alphas_cumprod[-1]

    def exact(noisy: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        """The prediction whose x0, by the scheduler's own formula, is the clean latent."""
        seen.append((noisy, timesteps))
        if prediction_type == "v_prediction":
            return (kept.sqrt() * noisy - latents) / (1 - kept).sqrt()
        return (noisy - kept.sqrt() * latents) / (1 - kept).sqrt()

    loss = first_step_loss(exact, scheduler, latents, torch.Generator().manual_seed(2))
    assert loss.item() < 1e-10
    noisy, timesteps = seen[0]
    assert timesteps.tolist() == [999, 999, 999]
    assert torch.equal(noisy, torch.randn(latents.shape, generator=torch.Generator().manual_seed(2)))
    x0 = scheduler.step(exact(noisy, timesteps), 999, noisy).pred_original_sample
    assert torch.allclose(x0, latents, atol=1e-4)
    wrong = first_step_loss(lambda n, t: exact(n, t) + 0.1, scheduler, latents, torch.Generator())
    assert wrong.item() == pytest.approx(0.01, rel=1e-3)


def test_kohya_names() -> None:
    peft = {
        "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_out.0.lora_A.weight": torch.zeros(2, 4),
        "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_out.0.lora_B.weight": torch.ones(4, 2),
    }
    kohya = lora_to_kohya(peft, alpha=2)
    name = "lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn1_to_out_0"
    assert set(kohya) == {f"{name}.lora_down.weight", f"{name}.lora_up.weight", f"{name}.alpha"}
    assert torch.equal(kohya[f"{name}.lora_up.weight"], torch.ones(4, 2)) and kohya[f"{name}.alpha"] == 2
    with pytest.raises(ValueError, match="unexpected"):
        lora_to_kohya({"conv.lora_magnitude_vector": torch.zeros(1)}, alpha=1)


def test_command_line_step_overrides() -> None:
    args = train_demo_model.parse_args(
        ["--preset", "tiny", "--steps", "2", "--lora-steps", "5", "--device", "cpu"]
    )
    config = train_demo_model.make_config(args)
    assert config.sizes == TINY and config.device == "cpu"
    assert [getattr(config, f"{stage}_steps") for stage in STAGES] == [2, 2, 2, 2, 2, 2, 5]


def test_text_encoder_width_fits_the_loader() -> None:
    """The loader derives CLIP's heads as width // 64, so the width must be a multiple of 64."""
    encoder = build_text_encoder(TINY)
    assert encoder.config.hidden_size % 64 == 0
    assert encoder.config.num_attention_heads == encoder.config.hidden_size // 64
