"""The training stages after the VAE (vae_stage.py), in order: UNet + text encoder, their layout tuning,
ControlNet, LoRA.

Each returns its finished models, or None when the time cap stopped it (run again to resume). A finished
stage is loaded from its work folder instead of being trained again.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, ControlNetModel, DDPMScheduler, UNet2DConditionModel
from peft import LoraConfig
from transformers import CLIPTextModel

from tools.demo_model import loop
from tools.demo_model.config import TrainConfig
from tools.demo_model.corpus import Captioner, Corpus, hint_batch, load_corpus
from tools.demo_model.data import moved, sample_scenes, split_combos
from tools.demo_model.models import (
    build_controlnet,
    build_text_encoder,
    build_unet,
    load_tokenizer,
    noise_scheduler,
)

# the UNet layers the LoRA adapts (kohya's classic LoRA: attention, its projections, feed-forward)
LORA_TARGETS = ["to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2"]

Predictor = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (noisy latents, timesteps) -> output


def _target(
    scheduler: DDPMScheduler, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor
) -> torch.Tensor:
    """What the model predicts for `latents` noised with `noise`: the velocity or the noise."""
    if scheduler.config.prediction_type == "v_prediction":
        return scheduler.get_velocity(latents, noise, timesteps)
    return noise


def diffusion_loss(
    predict: Predictor,
    scheduler: DDPMScheduler,
    latents: torch.Tensor,
    offset_noise: float,
    generator: torch.Generator,
) -> torch.Tensor:
    """MSE of the model's prediction (noise or velocity, as the scheduler says) at random timesteps, with
    offset noise (a random constant per image and channel added to the noise)."""
    batch, channels = latents.shape[:2]
    noise = torch.randn(latents.shape, generator=generator)
    noise = noise + offset_noise * torch.randn((batch, channels, 1, 1), generator=generator)
    timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (batch,), generator=generator)
    noise, timesteps = noise.to(latents.device), timesteps.to(latents.device)
    noisy = scheduler.add_noise(latents, noise, timesteps)
    return F.mse_loss(predict(noisy, timesteps), _target(scheduler, latents, noise, timesteps))


def first_step_loss(
    predict: Predictor,
    scheduler: DDPMScheduler,
    latents: torch.Tensor,
    generator: torch.Generator,
) -> torch.Tensor:
    """The sampler's first step: pure noise in at the last timestep, and as target the prediction that
    turns exactly that input into the clean latent, so only the caption can say what goes where. (SD's
    last timestep still keeps 7 % of the image in its inputs; the noise that pure noise implies is
    solved for, so the target is consistent with the scheduler's own x0 formula.)"""
    noise = torch.randn(latents.shape, generator=generator).to(latents.device)
    last = scheduler.config.num_train_timesteps - 1
    timesteps = torch.full((len(latents),), last, device=latents.device)
    kept = scheduler.alphas_cumprod[last].to(latents.device)
    implied_noise = (noise - kept.sqrt() * latents) / (1 - kept).sqrt()
    return F.mse_loss(predict(noise, timesteps), _target(scheduler, latents, implied_noise, timesteps))


def mixed_loss(
    predictor: Callable[[slice], Predictor],
    scheduler: DDPMScheduler,
    latents: torch.Tensor,
    first_steps: int,
    offset_noise: float,
    generator: torch.Generator,
) -> torch.Tensor:
    """The batch's mean loss: its first `first_steps` rows by `first_step_loss`, the rest by
    `diffusion_loss`; `predictor(rows)` is the model for those rows (their captions, hints)."""
    total = torch.zeros((), device=latents.device)
    if first_steps:
        rows = slice(None, first_steps)
        total += first_steps * first_step_loss(predictor(rows), scheduler, latents[rows], generator)
    if first_steps < len(latents):
        rows = slice(first_steps, None)
        loss = diffusion_loss(predictor(rows), scheduler, latents[rows], offset_noise, generator)
        total += (len(latents) - first_steps) * loss
    return total / len(latents)


# --- UNet + text encoder --------------------------------------------------------------------------


def _plain_corpus(config: TrainConfig, vae: AutoencoderKL) -> Corpus:
    scenes = sample_scenes(split_combos(config.seed).train, config.corpus_images, config.seed + 3)
    return load_corpus(
        config.work_dir / "corpus" / "plain.pt", scenes, vae, "plain", torch.device(config.device)
    )


def _unet_step(
    config: TrainConfig,
    corpus: Corpus,
    unet: UNet2DConditionModel,
    text_encoder: CLIPTextModel,
    first_step_share: float,
    caption_dropout: float,
) -> Callable[[torch.Generator], torch.Tensor]:
    """One batch's loss for UNet + text encoder: `first_step_share` of it by `first_step_loss`, the rest
    by the ordinary `diffusion_loss`."""
    device = torch.device(config.device)
    captioner = Captioner(load_tokenizer())
    scheduler = noise_scheduler(config.prediction_type, config.zero_terminal_snr)
    first = round(config.batch_size * first_step_share)

    def step(generator: torch.Generator) -> torch.Tensor:
        index = torch.randint(len(corpus.latents), (config.batch_size,), generator=generator)
        captions = captioner.sample([corpus.combos[i] for i in index], caption_dropout, generator)
        context = text_encoder(captioner.ids(captions).to(device)).last_hidden_state
        latents = corpus.latents[index].to(device)

        def predictor(rows: slice) -> Predictor:
            return lambda noisy, timesteps: unet(noisy, timesteps, encoder_hidden_states=context[rows]).sample

        return mixed_loss(predictor, scheduler, latents, first, config.offset_noise, generator)

    return step


def train_unet(config: TrainConfig, vae: AutoencoderKL) -> tuple[UNet2DConditionModel, CLIPTextModel] | None:
    """The UNet and the text encoder, trained together from scratch with caption dropout."""
    folder, device = config.work_dir / "unet", torch.device(config.device)
    torch.manual_seed(config.seed + 2)
    unet, text_encoder = build_unet(config.sizes).to(device), build_text_encoder(config.sizes).to(device)
    modules = {"unet": unet, "text_encoder": text_encoder}
    if loop.is_done(folder):
        loop.load_final(folder, modules)
        return unet.eval().requires_grad_(False), text_encoder.eval().requires_grad_(False)
    step = _unet_step(config, _plain_corpus(config, vae), unet, text_encoder, 0.0, config.caption_dropout)
    parameters = [*unet.parameters(), *text_encoder.parameters()]
    schedule = config.schedule(config.unet_steps, config.unet_lr)
    outcome = loop.run(folder, modules, parameters, schedule, step, config.seed + 2, config.minutes, "unet")
    if not outcome.finished:
        return None
    loop.save_final(folder, modules)
    return unet.requires_grad_(False), text_encoder.requires_grad_(False)


@dataclass(frozen=True)
class _Phase:
    name: str  # also its work-dir folder
    steps: int
    lr: float
    first_step_share: float
    caption_dropout: float


def train_layout(
    config: TrainConfig, vae: AutoencoderKL, unet: UNet2DConditionModel, text_encoder: CLIPTextModel
) -> tuple[UNet2DConditionModel, CLIPTextModel] | None:
    """Teach the trained UNet + text encoder where the caption puts the shape (README.md: on SD's
    schedule even the noisiest inputs show it, so the ordinary loss never needs the position words).
    Two phases, each resumable in its own folder: "layout", first steps only and no empty captions
    (caption -> clean latent); then "settle", half first steps and half the ordinary loss with caption
    dropout, so the other timesteps and CFG's unconditional branch recover. Trains `unet` and
    `text_encoder` in place."""
    modules = {"unet": unet, "text_encoder": text_encoder}
    phases = (
        _Phase("layout", config.layout_steps, config.layout_lr, first_step_share=1.0, caption_dropout=0.0),
        _Phase(
            "settle",
            config.settle_steps,
            config.settle_lr,
            config.settle_first_step_share,
            config.caption_dropout,
        ),
    )
    corpus = None
    for number, phase in enumerate(phases):
        folder = config.work_dir / phase.name
        if loop.is_done(folder):
            loop.load_final(folder, modules)
            continue
        corpus = corpus or _plain_corpus(config, vae)
        step = _unet_step(config, corpus, unet, text_encoder, phase.first_step_share, phase.caption_dropout)
        parameters = [
            *unet.requires_grad_(True).parameters(),
            *text_encoder.requires_grad_(True).parameters(),
        ]
        schedule = config.schedule(phase.steps, phase.lr)
        seed = config.seed + 7 + number
        outcome = loop.run(folder, modules, parameters, schedule, step, seed, config.minutes, phase.name)
        if not outcome.finished:
            return None
        loop.save_final(folder, modules)
    return unet.eval().requires_grad_(False), text_encoder.eval().requires_grad_(False)


# --- ControlNet -----------------------------------------------------------------------------------


def train_controlnet(
    config: TrainConfig, vae: AutoencoderKL, unet: UNet2DConditionModel, text_encoder: CLIPTextModel
) -> ControlNetModel | None:
    """A ControlNet copied from the trained UNet, taught to follow the edge hints (UNet and text frozen).
    Some captions name another position than the hint's, so the hint wins over the prompt's position
    words; some of each batch by `first_step_loss`, as the first sampling step decides the layout."""
    folder, device = config.work_dir / "controlnet", torch.device(config.device)
    controlnet = build_controlnet(unet, config.sizes).to(device)
    if loop.is_done(folder):
        loop.load_final(folder, {"controlnet": controlnet})
        return controlnet.eval().requires_grad_(False)
    corpus = _plain_corpus(config, vae)
    captioner = Captioner(load_tokenizer())
    scheduler = noise_scheduler(config.prediction_type, config.zero_terminal_snr)
    first = round(config.batch_size * config.control_first_step_share)

    def step(generator: torch.Generator) -> torch.Tensor:
        index = torch.randint(len(corpus.latents), (config.batch_size,), generator=generator)
        moves = (torch.rand(len(index), generator=generator) < config.control_moved_caption_share).tolist()
        picks = torch.randint(4, (len(index),), generator=generator).tolist()
        combos = [
            moved(corpus.combos[i], pick) if move else corpus.combos[i]
            for i, move, pick in zip(index.tolist(), moves, picks, strict=True)
        ]
        captions = captioner.sample(combos, config.control_caption_dropout, generator)
        with torch.no_grad():
            context = text_encoder(captioner.ids(captions).to(device)).last_hidden_state
        hint = hint_batch(corpus.hints[index]).to(device)

        def predictor(rows: slice) -> Predictor:
            def predict(noisy: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
                down, middle = controlnet(
                    noisy,
                    timesteps,
                    encoder_hidden_states=context[rows],
                    controlnet_cond=hint[rows],
                    return_dict=False,
                )
                return unet(
                    noisy,
                    timesteps,
                    encoder_hidden_states=context[rows],
                    down_block_additional_residuals=down,
                    mid_block_additional_residual=middle,
                ).sample

            return predict

        latents = corpus.latents[index].to(device)
        return mixed_loss(predictor, scheduler, latents, first, config.offset_noise, generator)

    schedule = config.schedule(config.controlnet_steps, config.controlnet_lr)
    outcome = loop.run(
        folder,
        {"controlnet": controlnet},
        list(controlnet.parameters()),
        schedule,
        step,
        config.seed + 4,
        config.minutes,
        "controlnet",
    )
    if not outcome.finished:
        return None
    loop.save_final(folder, {"controlnet": controlnet})
    return controlnet.requires_grad_(False)


# --- LoRA -----------------------------------------------------------------------------------------


def add_lora(unet: UNet2DConditionModel, rank: int) -> None:
    """peft LoRA layers on the UNet (B starts at zero, so the adapter starts as a no-op)."""
    unet.add_adapter(LoraConfig(r=rank, lora_alpha=rank, target_modules=LORA_TARGETS, init_lora_weights=True))


def train_lora(
    config: TrainConfig, vae: AutoencoderKL, unet: UNet2DConditionModel, text_encoder: CLIPTextModel
) -> UNet2DConditionModel | None:
    """The "pastel" style LoRA: the frozen demo UNet plus LoRA layers, trained on pastel renderings of the
    same captions. Returns a copy of the UNet with the trained adapter; `unet` itself stays as it was."""
    folder, device = config.work_dir / "lora", torch.device(config.device)
    torch.manual_seed(config.seed + 5)
    unet = copy.deepcopy(unet)
    add_lora(unet, config.lora_rank)
    if loop.is_done(folder):
        loop.load_final(folder, {"unet": unet})
        return unet.eval().requires_grad_(False)
    scenes = sample_scenes(split_combos(config.seed).train, config.lora_images, config.seed + 6)
    corpus = load_corpus(config.work_dir / "corpus" / "pastel.pt", scenes, vae, "pastel", device)
    captioner = Captioner(load_tokenizer())
    scheduler = noise_scheduler(config.prediction_type, config.zero_terminal_snr)
    parameters = [p for p in unet.parameters() if p.requires_grad]  # add_adapter leaves only LoRA trainable

    def step(generator: torch.Generator) -> torch.Tensor:
        index = torch.randint(len(corpus.latents), (config.batch_size,), generator=generator)
        captions = captioner.sample([corpus.combos[i] for i in index], config.caption_dropout, generator)
        with torch.no_grad():
            context = text_encoder(captioner.ids(captions).to(device)).last_hidden_state

        def predict(noisy: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
            return unet(noisy, timesteps, encoder_hidden_states=context).sample

        return diffusion_loss(
            predict, scheduler, corpus.latents[index].to(device), config.offset_noise, generator
        )

    schedule = config.schedule(config.lora_steps, config.lora_lr)
    outcome = loop.run(
        folder, {"unet": unet}, parameters, schedule, step, config.seed + 5, config.minutes, "lora"
    )
    if not outcome.finished:
        return None
    loop.save_final(folder, {"unet": unet})
    return unet.requires_grad_(False)
