"""How much of a scene survives the VAE: held-out renders encoded and decoded, read back by the scorer.

The diffusion model can draw no more than its VAE reconstructs, so this is the first figure to look at
when generated shapes come out wrong (README.md: the shipped VAE kept the kind of small shapes rarely).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from diffusers import AutoencoderKL

from tools.demo_model.corpus import render_pixels, to_model_range
from tools.demo_model.data import render, sample_scenes, shape_mask, split_combos
from tools.demo_model.score import accuracy, edge_error, iou, judge, read_image

BATCH = 128


@dataclass(frozen=True)
class VaeFigures:
    accuracy: dict[str, float]  # share of reconstructions that still show each attribute of the scene
    small_shape: float  # kind kept, small shapes only (the hard case)
    iou: float  # mean IoU of the reconstruction's shape with the scene's
    pixel_error: float  # mean absolute difference from the render, 0-255
    edge_error: float  # score.edge_error of the reconstructions, mean, 0-255

    def lines(self) -> list[str]:
        read = ", ".join(f"{key} {value:.1%}" for key, value in self.accuracy.items())
        return [
            f"VAE reconstructions of held-out scenes: {read} (small shapes' kind {self.small_shape:.1%})",
            f"  shape IoU {self.iou:.3f}, pixel error {self.pixel_error:.2f}/255, "
            f"edge ring error {self.edge_error:.2f}/255",
        ]


@torch.no_grad()
def check_vae(vae: AutoencoderKL, seed: int = 0, count: int = 384) -> VaeFigures:
    """Reconstruct `count` jittered scenes of held-out combos (posterior mean) and score them."""
    scenes = sample_scenes(split_combos(seed).held_out, count, seed + 77)
    device, dtype = vae.device, vae.dtype
    pixels = render_pixels(scenes)
    decoded = []
    for start in range(0, count, BATCH):
        images = to_model_range(pixels[start : start + BATCH]).to(device, dtype)
        decoded.append(vae.decode(vae.encode(images).latent_dist.mean).sample.float().cpu())
    images = ((torch.cat(decoded).clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    readings = [read_image(image) for image in images]
    marks = [judge(reading, scene.combo) for reading, scene in zip(readings, scenes, strict=True)]
    small = [m["shape"] for m, s in zip(marks, scenes, strict=True) if s.combo.size == "small"]
    truth = np.stack([np.asarray(render(scene), dtype=np.float32) for scene in scenes])
    return VaeFigures(
        accuracy=accuracy(marks),
        small_shape=float(np.mean(small)) if small else float("nan"),
        iou=float(np.mean([iou(r.mask, shape_mask(s)) for r, s in zip(readings, scenes, strict=True)])),
        pixel_error=float(np.abs(images.astype(np.float32) - truth).mean()),
        edge_error=float(np.mean([edge_error(i, r.mask) for i, r in zip(images, readings, strict=True)])),
    )
