"""Training tensors, built once per work dir: rendered images, their VAE latents, edge hints, captions.

Latents are cached on disk (the VAE is frozen after its own stage), keyed by a fingerprint of the VAE's
weights so a retrained VAE never meets stale latents.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderKL
from transformers import CLIPTokenizer

from tools.demo_model.data import Combo, Scene, Style, caption_variants, control_image, render

ENCODE_BATCH = 256


def render_pixels(scenes: Sequence[Scene], style: Style = "plain") -> torch.Tensor:
    """Scenes as uint8 images (N, 3, 64, 64)."""
    return torch.from_numpy(np.stack([np.asarray(render(s, style)) for s in scenes])).permute(0, 3, 1, 2)


def to_model_range(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1], the VAE's input range."""
    return pixels.float() / 127.5 - 1.0


def render_hints(scenes: Sequence[Scene]) -> torch.Tensor:
    """Edge hints of the scenes' plain images, uint8 0/1 (N, 64, 64)."""
    return torch.from_numpy(
        np.stack([np.asarray(control_image(render(s)))[..., 0] > 127 for s in scenes]).astype(np.uint8)
    )


def hint_batch(hints: torch.Tensor) -> torch.Tensor:
    """0/1 hints (B, 64, 64) -> the ControlNet's RGB input in [0, 1] (B, 3, 64, 64)."""
    return hints.float().unsqueeze(1).expand(-1, 3, -1, -1)


def vae_fingerprint(vae: AutoencoderKL) -> str:
    digest = hashlib.sha1()
    for tensor in (vae.quant_conv.weight, vae.post_quant_conv.weight, vae.quant_conv.bias):
        digest.update(tensor.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


@torch.no_grad()
def encode(vae: AutoencoderKL, pixels: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 images -> the latents the UNet sees (posterior mean x scaling factor), on the CPU."""
    parts = []
    for start in range(0, len(pixels), ENCODE_BATCH):
        batch = to_model_range(pixels[start : start + ENCODE_BATCH]).to(device)
        parts.append(vae.encode(batch).latent_dist.mean.cpu())
    return torch.cat(parts) * vae.config.scaling_factor


@dataclass
class Corpus:
    combos: list[Combo]
    latents: torch.Tensor  # (N, 4, h, w), float32, CPU
    hints: torch.Tensor  # (N, 64, 64) uint8 edge maps of the plain images


def load_corpus(
    path: Path, scenes: Sequence[Scene], vae: AutoencoderKL, style: Style, device: torch.device
) -> Corpus:
    """The scenes' latents (rendered in `style`) and edge hints, from `path` when it holds them for this
    VAE, else computed and saved there."""
    fingerprint = vae_fingerprint(vae)
    combos = [s.combo for s in scenes]
    if path.is_file():
        cached = torch.load(path, weights_only=True)
        if cached["fingerprint"] == fingerprint and len(cached["latents"]) == len(scenes):
            return Corpus(combos, cached["latents"], cached["hints"])
    latents = encode(vae, render_pixels(scenes, style), device)
    hints = render_hints(scenes)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    torch.save({"fingerprint": fingerprint, "latents": latents, "hints": hints}, temporary)
    temporary.replace(path)
    return Corpus(combos, latents, hints)


class Captioner:
    """Random captions for combos (one phrasing each, some dropped to "") as CLIP token ids."""

    def __init__(self, tokenizer: CLIPTokenizer) -> None:
        self._tokenizer = tokenizer
        self._ids: dict[str, list[int]] = {}
        self._variants: dict[Combo, list[str]] = {}

    def ids(self, captions: Sequence[str]) -> torch.Tensor:
        """Token ids (B, 77): BOS, tokens, EOS, padded as SD1 pads (the web UI encodes prompts this way)."""
        missing = [c for c in dict.fromkeys(captions) if c not in self._ids]
        if missing:
            encoded = self._tokenizer(missing, padding="max_length", max_length=77, truncation=True).input_ids
            self._ids.update(zip(missing, encoded, strict=True))
        return torch.tensor([self._ids[c] for c in captions])

    def sample(self, combos: Sequence[Combo], dropout: float, generator: torch.Generator) -> list[str]:
        """One random phrasing per combo; each replaced by "" with probability `dropout`."""
        picks = torch.rand(len(combos), generator=generator).tolist()
        drops = torch.rand(len(combos), generator=generator).tolist()
        captions = []
        for combo, pick, drop in zip(combos, picks, drops, strict=True):
            variants = self._variants.setdefault(combo, caption_variants(combo))
            captions.append("" if drop < dropout else variants[int(pick * len(variants))])
        return captions
