"""Memory modes (--medvram, --lowvram, --medvram-sdxl), VAE precision (--no-half-vae) and our own VAE decode
(tiling for large images, an fp32 retry instead of a black image when the half-precision VAE overflows).

Attention needs nothing here: diffusers 0.42 gives every UNet, VAE and text encoder PyTorch's scaled dot
product attention (AttnProcessor2_0) by default, the memory-efficient kernel A1111 calls "sdp".
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from typing import Any, Literal

import torch
from PIL import Image

from webui.engine.devices import DeviceChoice

log = logging.getLogger(__name__)

Offload = Literal["none", "model", "sequential"]
DEFAULT_TILING_THRESHOLD = 1536  # pixels per side; 0 = never tile


@dataclass(frozen=True)
class MemoryFlags:
    """The command-line flags that trade speed for GPU memory or precision.

    - medvram: whole components (text encoder, UNet, VAE) move to the GPU only while they run
      (diffusers `enable_model_cpu_offload`).
    - lowvram: weights move to the GPU layer by layer as they run (`enable_sequential_cpu_offload`).
    - medvram_sdxl: medvram for SDXL checkpoints only.
    - no_half_vae: the VAE stays in float32 while the rest runs in float16.
    - upcast_sampling: the sampler's latents stay in float32 and the UNet runs under float16 autocast,
      which avoids fp16 overflow in the sampler's arithmetic at the cost of some speed (A1111's
      "--upcast-sampling"; no effect with --no-half or on the CPU, which always runs float32).
    """

    medvram: bool = False
    lowvram: bool = False
    medvram_sdxl: bool = False
    no_half_vae: bool = False
    upcast_sampling: bool = False

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> MemoryFlags:
        return cls(
            medvram=args.medvram,
            lowvram=args.lowvram,
            medvram_sdxl=args.medvram_sdxl,
            no_half_vae=args.no_half_vae,
            upcast_sampling=args.upcast_sampling,
        )

    def names(self) -> list[str]:
        """The flags that are set, as typed on the command line."""
        return [f"--{name.replace('_', '-')}" for name, on in vars(self).items() if on]

    def offload_for(self, family: str) -> Offload:
        """Which offload a checkpoint of `family` ("sd1", "sd2", "sdxl") gets; lowvram wins over medvram."""
        if self.lowvram:
            return "sequential"
        if self.medvram or (self.medvram_sdxl and family == "sdxl"):
            return "model"
        return "none"


def log_startup(flags: MemoryFlags, device: DeviceChoice) -> None:
    """Say once what the memory flags will do on this device."""
    names = flags.names()
    if not names:
        return
    if device.device.type != "cuda":
        why = "offload and half precision are for CUDA GPUs"
        log.info("%s: no effect on %s (%s)", " ".join(names), device.describe(), why)
    else:
        log.info("Memory options on %s: %s", device.describe(), " ".join(names))


def prepare_pipe(pipe: Any, family: str, flags: MemoryFlags, device: DeviceChoice) -> Offload:
    """Apply the flags to a freshly loaded pipeline; returns the offload now installed on it.

    An offloaded pipeline places its components itself: callers must not `.to(device)` it afterwards."""
    if device.device.type != "cuda":
        return "none"
    if flags.no_half_vae and device.dtype != torch.float32:
        pipe.vae.to(dtype=torch.float32)
    mode = flags.offload_for(family)
    if mode == "model":
        pipe.enable_model_cpu_offload(device=device.device)
    elif mode == "sequential":
        pipe.enable_sequential_cpu_offload(device=device.device)
    return mode


def sampling_dtype(flags: MemoryFlags, device: DeviceChoice, unet_dtype: torch.dtype) -> torch.dtype:
    """The dtype of the sampler's latents: float32 with --upcast-sampling on a half-precision GPU."""
    if flags.upcast_sampling and device.device.type == "cuda" and unet_dtype != torch.float32:
        return torch.float32
    return unet_dtype


def sampling_autocast(flags: MemoryFlags, device: DeviceChoice, unet_dtype: torch.dtype) -> torch.autocast:
    """Autocast for the denoising loop: on only when the latents were upcast (the UNet's weights are half)."""
    enabled = sampling_dtype(flags, device, unet_dtype) != unet_dtype
    return torch.autocast(device.device.type, dtype=unet_dtype, enabled=enabled)


def decode_latents(
    pipe: Any, latents: torch.Tensor, tiling_threshold: int = DEFAULT_TILING_THRESHOLD
) -> list[Image.Image]:
    """Latents from the pipeline (`output_type="latent"`) -> PIL images, as the pipeline's own decode would
    give them, with VAE tiling above `tiling_threshold` pixels per side (0: never) and a float32 retry when
    the decode yields NaN or infinity."""
    vae = pipe.vae
    side = max(latents.shape[-2:]) * pipe.vae_scale_factor
    tile = tiling_threshold > 0 and side > tiling_threshold
    was_tiling = vae.use_tiling
    if tile and not was_tiling:
        vae.enable_tiling()
    try:
        upcast = _upcasts_itself(pipe) or vae.dtype == torch.float32
        image = _decode_upcast(vae, latents) if upcast else _decode(vae, latents, vae.dtype)
        if not upcast and not torch.isfinite(image).all():
            half = str(vae.dtype).removeprefix("torch.")
            log.warning("VAE produced NaN/inf in %s; decoding again in float32", half)
            image = _decode_upcast(vae, latents)
    finally:
        if tile and not was_tiling:
            vae.disable_tiling()
    denormalize = [True] * image.shape[0]  # no safety checker here
    images = pipe.image_processor.postprocess(image, output_type="pil", do_denormalize=denormalize)
    pipe.maybe_free_model_hooks()  # as the pipelines end: with --medvram the VAE goes back to RAM
    return images


def _upcasts_itself(pipe: Any) -> bool:
    """SDXL pipelines decode in float32 whenever the VAE is float16 with `force_upcast` (its VAE overflows
    in float16); the SD1/SD2 pipelines ignore the flag. Do as each does, so pixels stay theirs."""
    vae = pipe.vae
    return hasattr(pipe, "text_encoder_2") and vae.dtype == torch.float16 and bool(vae.config.force_upcast)


def _decode(vae: Any, latents: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The pipelines' own scaling (SDXL's latents_mean/std when the VAE config has them), then decode."""
    config = vae.config
    latents = latents.to(dtype)
    mean, std = getattr(config, "latents_mean", None), getattr(config, "latents_std", None)
    if mean is not None and std is not None:
        mean = torch.tensor(mean).view(1, -1, 1, 1).to(latents.device, dtype)
        std = torch.tensor(std).view(1, -1, 1, 1).to(latents.device, dtype)
        latents = latents * std / config.scaling_factor + mean
    else:
        latents = latents / config.scaling_factor
    return vae.decode(latents, return_dict=False)[0]


def _decode_upcast(vae: Any, latents: torch.Tensor) -> torch.Tensor:
    """Decode with the VAE temporarily in float32, then put it back in its own dtype."""
    dtype = vae.dtype
    if dtype != torch.float32:
        vae.to(dtype=torch.float32)
    try:
        image = _decode(vae, latents, torch.float32)
    finally:
        if dtype != torch.float32:
            vae.to(dtype=dtype)
    if not torch.isfinite(image).all():
        log.error("VAE still produced NaN/inf in float32: the latents themselves are broken")
    return image
