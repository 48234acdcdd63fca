"""The VAE stage: encoder and decoder on random crops, the latent space standardised, then the decoder
alone on whole images (README.md says why each step is there)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL

from tools.demo_model import loop
from tools.demo_model.config import TrainConfig
from tools.demo_model.corpus import render_pixels, to_model_range
from tools.demo_model.data import sample_scenes, split_combos
from tools.demo_model.models import build_vae

PASTEL_SHARE = 4  # one VAE training image in 4 is pastel, so the VAE also reconstructs the LoRA's style
VAE_CROP = 32  # the VAE trains on random 32x32 crops: 4x cheaper than whole images, same local content
EDGE_STEP = 0.02  # a colour step (model range, summed over channels) above this marks an outline pixel


def outline_pixels(images: torch.Tensor) -> torch.Tensor:
    """Where the images (B, 3, H, W) change colour, widened by a pixel on each side: 1.0 there, else 0.0
    (B, 1, H, W). On these flat scenes that is the shape's outline, its corners included."""
    across = (images[..., :, 1:] - images[..., :, :-1]).abs().sum(dim=1, keepdim=True)
    down = (images[..., 1:, :] - images[..., :-1, :]).abs().sum(dim=1, keepdim=True)
    steps = F.pad(across, (0, 1, 0, 0)) + F.pad(down, (0, 0, 0, 1))
    return (F.max_pool2d(steps, 3, stride=1, padding=1) > EDGE_STEP).float()


def reconstruction_loss(decoded: torch.Tensor, images: torch.Tensor, edge_weight: float) -> torch.Tensor:
    """L1 (keeps flat colours and sharp edges better than MSE at this size), each outline pixel counted
    `1 + edge_weight` times: a small shape's corners are a few pixels of 4,096, and plain L1 lets the
    decoder round them off (squares and triangles came back as circles)."""
    weight = 1.0 + edge_weight * outline_pixels(images)
    return ((decoded - images).abs() * weight).sum() / (weight.sum() * images.shape[1])


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


def _vae_pixels(config: TrainConfig) -> torch.Tensor:
    scenes = sample_scenes(split_combos(config.seed).train, config.vae_images, config.seed + 1)
    pastel = len(scenes) // PASTEL_SHARE
    return torch.cat([render_pixels(scenes[pastel:]), render_pixels(scenes[:pastel], "pastel")])


def _train_on_crops(config: TrainConfig, vae: AutoencoderKL, pixels: torch.Tensor) -> bool:
    """Encoder and decoder on random crops, then the latents standardised; False when the time cap hit."""
    device = torch.device(config.device)

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
        loss = reconstruction_loss(vae.decode(sample).sample, images, config.vae_edge_weight)
        return loss + config.kl_weight * posterior.kl().mean()

    folder = config.work_dir / "vae"
    schedule = config.schedule(config.vae_steps, config.vae_lr)
    outcome = loop.run(
        folder, {"vae": vae}, list(vae.parameters()), schedule, step, config.seed, config.minutes, "vae"
    )
    if not outcome.finished:
        return False
    vae.eval()
    standardize_latents(vae, pixels)
    loop.save_final(folder, {"vae": vae})
    return True


def _train_decoder(config: TrainConfig, vae: AutoencoderKL, pixels: torch.Tensor) -> bool:
    """The decoder alone on whole images: crops leave a frame and shifted colours on whole images. The
    encoder and the latent convs stay as they are, so every latent (and the corpus cache) is unchanged.
    False when the time cap hit."""
    device = torch.device(config.device)
    vae.requires_grad_(False)
    parameters = list(vae.decoder.requires_grad_(True).parameters())

    def step(generator: torch.Generator) -> torch.Tensor:
        index = torch.randint(len(pixels), (config.decoder_batch_size,), generator=generator)
        images = to_model_range(pixels[index]).to(device)
        with torch.no_grad():
            posterior = vae.encode(images).latent_dist
            noise = torch.randn(posterior.mean.shape, generator=generator).to(device)
            sample = posterior.mean + posterior.std * noise
        return reconstruction_loss(vae.decode(sample).sample, images, config.vae_edge_weight)

    folder = config.work_dir / "decoder"
    schedule = config.schedule(config.decoder_steps, config.decoder_lr)
    seed = config.seed + 9
    outcome = loop.run(folder, {"vae": vae}, parameters, schedule, step, seed, config.minutes, "decoder")
    if not outcome.finished:
        return False
    loop.save_final(folder, {"vae": vae})
    return True


def train_vae(config: TrainConfig) -> AutoencoderKL | None:
    """The VAE, trained on crops, standardised, then its decoder fine-tuned on whole images."""
    torch.manual_seed(config.seed)
    vae = build_vae(config.sizes).to(torch.device(config.device))
    if loop.is_done(config.work_dir / "decoder"):
        loop.load_final(config.work_dir / "decoder", {"vae": vae})
        return vae.eval().requires_grad_(False)
    pixels = _vae_pixels(config)
    if loop.is_done(config.work_dir / "vae"):
        loop.load_final(config.work_dir / "vae", {"vae": vae})
    elif not _train_on_crops(config, vae, pixels):
        return None
    if not _train_decoder(config, vae, pixels):
        return None
    return vae.eval().requires_grad_(False)
