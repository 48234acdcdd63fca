"""The four training stages, in order: VAE, UNet + text encoder, ControlNet, LoRA.

Each returns its finished models, or None when the time cap stopped it (run again to resume). A finished
stage is loaded from its work folder instead of being trained again.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, ControlNetModel, DDPMScheduler, UNet2DConditionModel
from peft import LoraConfig
from transformers import CLIPTextModel

from tools.demo_model import loop
from tools.demo_model.config import TrainConfig
from tools.demo_model.corpus import Captioner, Corpus, hint_batch, load_corpus, render_pixels, to_model_range
from tools.demo_model.data import sample_scenes, split_combos
from tools.demo_model.models import (
    build_controlnet,
    build_text_encoder,
    build_unet,
    build_vae,
    load_tokenizer,
    noise_scheduler,
)

# the UNet layers the LoRA adapts (kohya's classic LoRA: attention, its projections, feed-forward)
LORA_TARGETS = ["to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2"]
PASTEL_SHARE = 4  # one VAE training image in 4 is pastel, so the VAE also reconstructs the LoRA's style
VAE_CROP = 32  # the VAE trains on random 32x32 crops: 4x cheaper than whole images, same local content


def _schedule(config: TrainConfig, steps: int, lr: float) -> loop.Schedule:
    return loop.Schedule(
        steps=steps, lr=lr, warmup=config.warmup, save_every=config.save_every, log_every=config.log_every
    )


def diffusion_loss(
    predict: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
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
    if scheduler.config.prediction_type == "v_prediction":
        target = scheduler.get_velocity(latents, noise, timesteps)
    else:
        target = noise
    return F.mse_loss(predict(noisy, timesteps), target)


# --- VAE ------------------------------------------------------------------------------------------


@torch.no_grad()
def standardize_latents(vae: AutoencoderKL, pixels: torch.Tensor) -> None:
    """Rescale the latent space in place so that latents x SD's scaling factor have zero mean and unit
    variance per channel: the encoder's mean and log-variance outputs and the decoder's input conv are
    reparametrised, so reconstructions stay exactly the same and the loader's SD1 factor (0.18215) fits."""
    device = vae.quant_conv.weight.device
    means = torch.cat(
        [
            vae.encode(to_model_range(pixels[i : i + 256]).to(device)).latent_dist.mean
            for i in range(0, len(pixels), 256)
        ]
    )
    centre = means.mean(dim=(0, 2, 3))
    gain = 1.0 / (means.std(dim=(0, 2, 3)) * vae.config.scaling_factor)
    latent = vae.config.latent_channels
    encoder_out, decoder_in = vae.quant_conv, vae.post_quant_conv
    # decoder first, while it still sees the old latents: z_old = z_new / gain + centre
    decoder_in.bias += (decoder_in.weight[:, :, 0, 0] * centre).sum(dim=1)
    decoder_in.weight /= gain[None, :, None, None]
    encoder_out.weight[:latent] *= gain[:, None, None, None]
    encoder_out.bias[:latent] = (encoder_out.bias[:latent] - centre) * gain
    encoder_out.bias[latent:] += 2 * torch.log(gain)  # log-variance of the rescaled posterior


def train_vae(config: TrainConfig) -> AutoencoderKL | None:
    folder, device = config.work_dir / "vae", torch.device(config.device)
    torch.manual_seed(config.seed)
    vae = build_vae(config.sizes).to(device)
    if loop.is_done(folder):
        loop.load_final(folder, {"vae": vae})
        return vae.eval().requires_grad_(False)
    scenes = sample_scenes(split_combos(config.seed).train, config.vae_images, config.seed + 1)
    pastel = len(scenes) // PASTEL_SHARE
    pixels = torch.cat([render_pixels(scenes[pastel:]), render_pixels(scenes[:pastel], "pastel")])

    def step(generator: torch.Generator) -> torch.Tensor:
        index = torch.randint(len(pixels), (config.vae_batch_size,), generator=generator)
        corners = torch.randint(
            pixels.shape[-1] - VAE_CROP + 1, (config.vae_batch_size, 2), generator=generator
        )
        crops = [
            pixels[i, :, y : y + VAE_CROP, x : x + VAE_CROP]
            for i, (y, x) in zip(index, corners.tolist(), strict=True)
        ]
        images = to_model_range(torch.stack(crops)).to(device)
        posterior = vae.encode(images).latent_dist
        sample = posterior.mean + posterior.std * torch.randn(posterior.mean.shape, generator=generator).to(
            device
        )
        # L1 keeps flat colours and sharp edges better than MSE at this size
        return F.l1_loss(vae.decode(sample).sample, images) + config.kl_weight * posterior.kl().mean()

    schedule = _schedule(config, config.vae_steps, config.vae_lr)
    outcome = loop.run(
        folder, {"vae": vae}, list(vae.parameters()), schedule, step, config.seed, config.minutes, "vae"
    )
    if not outcome.finished:
        return None
    vae.eval()
    standardize_latents(vae, pixels)
    loop.save_final(folder, {"vae": vae})
    return vae.requires_grad_(False)


# --- UNet + text encoder --------------------------------------------------------------------------


def _plain_corpus(config: TrainConfig, vae: AutoencoderKL) -> Corpus:
    scenes = sample_scenes(split_combos(config.seed).train, config.corpus_images, config.seed + 3)
    return load_corpus(
        config.work_dir / "corpus" / "plain.pt", scenes, vae, "plain", torch.device(config.device)
    )


def train_unet(config: TrainConfig, vae: AutoencoderKL) -> tuple[UNet2DConditionModel, CLIPTextModel] | None:
    """The UNet and the text encoder, trained together from scratch with caption dropout."""
    folder, device = config.work_dir / "unet", torch.device(config.device)
    torch.manual_seed(config.seed + 2)
    unet, text_encoder = build_unet(config.sizes).to(device), build_text_encoder(config.sizes).to(device)
    modules = {"unet": unet, "text_encoder": text_encoder}
    if loop.is_done(folder):
        loop.load_final(folder, modules)
        return unet.eval().requires_grad_(False), text_encoder.eval().requires_grad_(False)
    corpus = _plain_corpus(config, vae)
    captioner = Captioner(load_tokenizer())
    scheduler = noise_scheduler(config.prediction_type, config.zero_terminal_snr)

    def step(generator: torch.Generator) -> torch.Tensor:
        index = torch.randint(len(corpus.latents), (config.batch_size,), generator=generator)
        captions = captioner.sample([corpus.combos[i] for i in index], config.caption_dropout, generator)
        context = text_encoder(captioner.ids(captions).to(device)).last_hidden_state

        def predict(noisy: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
            return unet(noisy, timesteps, encoder_hidden_states=context).sample

        return diffusion_loss(
            predict, scheduler, corpus.latents[index].to(device), config.offset_noise, generator
        )

    parameters = [*unet.parameters(), *text_encoder.parameters()]
    schedule = _schedule(config, config.unet_steps, config.unet_lr)
    outcome = loop.run(folder, modules, parameters, schedule, step, config.seed + 2, config.minutes, "unet")
    if not outcome.finished:
        return None
    loop.save_final(folder, modules)
    return unet.requires_grad_(False), text_encoder.requires_grad_(False)


# --- ControlNet -----------------------------------------------------------------------------------


def train_controlnet(
    config: TrainConfig, vae: AutoencoderKL, unet: UNet2DConditionModel, text_encoder: CLIPTextModel
) -> ControlNetModel | None:
    """A ControlNet copied from the trained UNet, taught to follow the edge hints (UNet and text frozen)."""
    folder, device = config.work_dir / "controlnet", torch.device(config.device)
    controlnet = build_controlnet(unet, config.sizes).to(device)
    if loop.is_done(folder):
        loop.load_final(folder, {"controlnet": controlnet})
        return controlnet.eval().requires_grad_(False)
    corpus = _plain_corpus(config, vae)
    captioner = Captioner(load_tokenizer())
    scheduler = noise_scheduler(config.prediction_type, config.zero_terminal_snr)

    def step(generator: torch.Generator) -> torch.Tensor:
        index = torch.randint(len(corpus.latents), (config.batch_size,), generator=generator)
        captions = captioner.sample(
            [corpus.combos[i] for i in index], config.control_caption_dropout, generator
        )
        with torch.no_grad():
            context = text_encoder(captioner.ids(captions).to(device)).last_hidden_state
        hint = hint_batch(corpus.hints[index]).to(device)

        def predict(noisy: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
            down, middle = controlnet(
                noisy, timesteps, encoder_hidden_states=context, controlnet_cond=hint, return_dict=False
            )
            return unet(
                noisy,
                timesteps,
                encoder_hidden_states=context,
                down_block_additional_residuals=down,
                mid_block_additional_residual=middle,
            ).sample

        return diffusion_loss(
            predict, scheduler, corpus.latents[index].to(device), config.offset_noise, generator
        )

    schedule = _schedule(config, config.controlnet_steps, config.controlnet_lr)
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

    schedule = _schedule(config, config.lora_steps, config.lora_lr)
    outcome = loop.run(
        folder, {"unet": unet}, parameters, schedule, step, config.seed + 5, config.minutes, "lora"
    )
    if not outcome.finished:
        return None
    loop.save_final(folder, {"unet": unet})
    return unet.requires_grad_(False)
