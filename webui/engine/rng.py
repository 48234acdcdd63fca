"""The latent noise of each image, as A1111 makes it, source by source ("Random number generator source").

- CPU: torch.randn from a CPU generator seeded with the image's seed.
- GPU: CUDA's own torch.randn on a CUDA machine; elsewhere NV, which gives the same numbers.
- NV: CUDA's torch.randn computed in numpy: Philox4x32-10 (Salmon et al. 2011, as in cuRAND) and
  cuRAND's Box-Muller. Element i of a draw is the first normal of Philox block (draw, 0, i, 0) under the
  key (seed low word, seed high word), and each draw moves one block on. That is CUDA's layout while a
  tensor fits in one wave of threads (256 × SMs × blocks per SM: 120k elements or more on current cards);
  A1111 makes the same assumption, and latents are far smaller.

Each image has its own generator, so an image does not depend on the batch it was made in. `ImageRNG`
gives the initial noise (`first`, with variation seed and seed resize), then per-step noise for ancestral
and SDE samplers (`next`) from the same generators, re-seeded with seed + ENSD when ENSD is set.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TypeAlias

import numpy as np
import torch

from webui.core.errors import InvalidParameter

SOURCES = ("GPU", "CPU", "NV")
SEED_RESIZE_FACTOR = 8  # A1111 divides "Resize seed from" by 8 whatever the model's latent scale

# Philox4x32-10's multipliers and Weyl key increments (the paper's and cuRAND's constants)
_PHILOX_M = (0xD2511F53, 0xCD9E8D57)
_PHILOX_W = (0x9E3779B9, 0xBB67AE85)
_WORD = 0xFFFFFFFF
# cuRAND's Box-Muller constants are float32 (2^-32 and 2^-32·2π); the rest runs in float64 as A1111's NV
# does, so NV here is bit for bit A1111's NV (within float32 rounding of CUDA's own float math)
_INV_2POW32 = float(np.float32(2.3283064e-10))
_INV_2POW32_2PI = float(np.float32(2.3283064e-10 * 6.2831855))


def philox4x32_10(counter: np.ndarray, key: tuple[int, int]) -> np.ndarray:
    """Philox4x32-10 of each column of `counter` ((4, n) words) under the two-word `key`: (4, n) uint32."""
    words = [counter[i].astype(np.uint64) for i in range(4)]
    k0, k1 = np.uint64(key[0]), np.uint64(key[1])
    m0, m1 = np.uint64(_PHILOX_M[0]), np.uint64(_PHILOX_M[1])
    mask, shift = np.uint64(_WORD), np.uint64(32)
    for _ in range(10):
        product0 = words[0] * m0  # exact in 64 bits: both factors are below 2^32
        product1 = words[2] * m1
        words = [
            (product1 >> shift) ^ words[1] ^ k0,
            product1 & mask,
            (product0 >> shift) ^ words[3] ^ k1,
            product0 & mask,
        ]
        k0 = (k0 + np.uint64(_PHILOX_W[0])) & mask
        k1 = (k1 + np.uint64(_PHILOX_W[1])) & mask
    return np.stack(words).astype(np.uint32)


def philox_normal(seed: int, draw: int, count: int) -> np.ndarray:
    """The first `count` numbers of the `draw`-th torch.randn (0 = first) of a CUDA generator seeded with
    `seed`, as float32."""
    seed &= 0xFFFFFFFFFFFFFFFF  # torch takes the seed as an unsigned 64-bit number
    counter = np.zeros((4, count), dtype=np.uint32)
    counter[0], counter[1] = draw & _WORD, draw >> 32
    counter[2] = np.arange(count, dtype=np.uint32)
    words = philox4x32_10(counter, (seed & _WORD, seed >> 32))
    u = words[0] * _INV_2POW32 + _INV_2POW32 / 2  # in (0, 1): the log never sees 0
    v = words[1] * _INV_2POW32_2PI + _INV_2POW32_2PI / 2
    normal: np.ndarray = (np.sqrt(-2.0 * np.log(u)) * np.sin(v)).astype(np.float32)  # Box-Muller's sine
    return normal


class PhiloxGenerator:
    """The NV source's generator for one seed: successive draws are CUDA's successive torch.randn."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.draws = 0

    def randn(self, shape: tuple[int, ...]) -> torch.Tensor:
        values = philox_normal(self.seed, self.draws, math.prod(shape))
        self.draws += 1
        return torch.from_numpy(values.reshape(shape))


Generator: TypeAlias = torch.Generator | PhiloxGenerator


def device_source(source: str) -> str:
    """What `source` draws with on this machine: "CUDA", "CPU" or "NV" ("GPU" without CUDA is NV)."""
    if source not in SOURCES:
        raise InvalidParameter(
            f"Random number generator source must be one of {', '.join(SOURCES)}, not {source!r}"
        )
    if source == "GPU":
        return "CUDA" if torch.cuda.is_available() else "NV"
    return source


def make_generator(seed: int, source: str) -> Generator:
    """A fresh generator for `seed`; `source` as device_source gives it."""
    if source == "NV":
        return PhiloxGenerator(seed)
    return torch.Generator("cuda" if source == "CUDA" else "cpu").manual_seed(int(seed))


def draw(generator: Generator, shape: tuple[int, ...]) -> torch.Tensor:
    """The generator's next standard normal tensor, float32, on the generator's device."""
    if isinstance(generator, PhiloxGenerator):
        return generator.randn(shape)
    return torch.randn(shape, generator=generator, device=generator.device)


def slerp(strength: float, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """A1111's spherical interpolation of one image's noise (C, H, W) towards another's.

    As A1111's, it takes each (channel, column) along dim 1 as a vector, and when the two are nearly
    parallel on average it mixes linearly with the weights the other way round (low·strength +
    high·(1 - strength)); that only happens when both noises are (almost) the same."""
    low_unit = low / torch.norm(low, dim=1, keepdim=True)
    high_unit = high / torch.norm(high, dim=1, keepdim=True)
    dot = (low_unit * high_unit).sum(1)
    if dot.mean() > 0.9995:
        return low * strength + high * (1 - strength)
    omega = torch.acos(dot)
    sin_omega = torch.sin(omega)
    low_weight = (torch.sin((1.0 - strength) * omega) / sin_omega).unsqueeze(1)
    high_weight = (torch.sin(strength * omega) / sin_omega).unsqueeze(1)
    return low_weight * low + high_weight * high


def paste_centered(target: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """`noise` (C, h, w) centred in `target` (C, H, W) with A1111's arithmetic: pasted whole when smaller,
    its centre cropped when larger (offsets rounded down, so an odd excess loses one more row/column)."""
    dx = (target.shape[2] - noise.shape[2]) // 2
    dy = (target.shape[1] - noise.shape[1]) // 2
    w = noise.shape[2] if dx >= 0 else noise.shape[2] + 2 * dx
    h = noise.shape[1] if dy >= 0 else noise.shape[1] + 2 * dy
    tx, ty = max(dx, 0), max(dy, 0)
    sx, sy = max(-dx, 0), max(-dy, 0)
    result = target.clone()
    result[:, ty : ty + h, tx : tx + w] = noise[:, sy : sy + h, sx : sx + w]
    return result


class ImageRNG:
    """The noise of one batch: `first()` the initial latent noise (variation seed and seed resize
    applied), each later `next()` one more draw per image for ancestral / SDE sampler steps.

    `next()` returns `first()` the first time, as A1111's ImageRNG does. After the initial noise the
    generators continue, or start afresh at seed + ENSD when `eta_noise_seed_delta` is not 0."""

    def __init__(
        self,
        shape: Sequence[int],
        seeds: Sequence[int],
        subseeds: Sequence[int] | None = None,
        subseed_strength: float = 0.0,
        seed_resize_from_h: int = 0,
        seed_resize_from_w: int = 0,
        source: str = "GPU",
        eta_noise_seed_delta: int = 0,
    ) -> None:
        self.shape = tuple(int(size) for size in shape)
        if len(self.shape) != 3:
            raise ValueError(f"shape must be one image's latent shape (C, H, W), not {self.shape}")
        if not seeds:
            raise ValueError("at least one seed is needed")
        self.seeds = [int(seed) for seed in seeds]
        self.subseeds = None if subseeds is None else [int(subseed) for subseed in subseeds]
        self.subseed_strength = float(subseed_strength)
        self.seed_resize_from_h = int(seed_resize_from_h)
        self.seed_resize_from_w = int(seed_resize_from_w)
        self.source = device_source(source)
        self.eta_noise_seed_delta = int(eta_noise_seed_delta)
        self.generators = [make_generator(seed, self.source) for seed in self.seeds]
        self.is_first = True

    def _noise_shape(self) -> tuple[int, ...]:
        """The shape the seed's noise is made at: the "Resize seed from" size when both sides are set."""
        if self.seed_resize_from_h <= 0 or self.seed_resize_from_w <= 0:
            return self.shape
        factor = SEED_RESIZE_FACTOR
        return (self.shape[0], self.seed_resize_from_h // factor, self.seed_resize_from_w // factor)

    def _fresh(self, seed: int, shape: tuple[int, ...]) -> torch.Tensor:
        """The first draw of a new generator for `seed` (A1111 reseeds its global generator for it)."""
        return draw(make_generator(seed, self.source), shape)

    def first(self) -> torch.Tensor:
        """The initial noise, (len(seeds), C, H, W) float32; draws once from each image's generator."""
        self.is_first = False
        noise_shape = self._noise_shape()
        subseeds = self.subseeds if self.subseed_strength != 0 else None
        images = []
        for index, (seed, generator) in enumerate(zip(self.seeds, self.generators, strict=True)):
            if noise_shape == self.shape:
                noise = draw(generator, self.shape)
            else:
                noise = self._fresh(seed, noise_shape)
            if subseeds is not None:
                subseed = subseeds[index] if index < len(subseeds) else 0  # A1111: a missing one is 0
                noise = slerp(self.subseed_strength, noise, self._fresh(subseed, noise_shape).to(noise))
            if noise_shape != self.shape:
                noise = paste_centered(draw(generator, self.shape).to(noise), noise)
            images.append(noise)
        if self.eta_noise_seed_delta:
            delta = self.eta_noise_seed_delta
            self.generators = [make_generator(seed + delta, self.source) for seed in self.seeds]
        return torch.stack(images)

    def next(self) -> torch.Tensor:
        """The next noise of every image, (len(seeds), C, H, W) float32 (the first call: `first()`)."""
        if self.is_first:
            return self.first()
        return torch.stack([draw(generator, self.shape) for generator in self.generators])

    def randn_tensor(
        self,
        shape: Sequence[int],
        generator: object = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        layout: torch.layout | None = None,
    ) -> torch.Tensor:
        """`next()` in the signature of diffusers.utils.torch_utils.randn_tensor, to stand in for it in a
        scheduler's (or pipeline's) module while a run lasts; the generator it is handed is ignored."""
        noise = self.next()
        if tuple(noise.shape) != tuple(shape):
            raise ValueError(f"noise of shape {tuple(shape)} asked for, this batch's is {tuple(noise.shape)}")
        return noise.to(device=device or noise.device, dtype=dtype or noise.dtype)


def image_noise(
    shape: Sequence[int],
    seeds: Sequence[int],
    subseeds: Sequence[int] | None = None,
    subseed_strength: float = 0.0,
    seed_resize_from_h: int = 0,
    seed_resize_from_w: int = 0,
    source: str = "GPU",
) -> torch.Tensor:
    """The initial latent noise of each image of a batch: (len(seeds), *shape) float32 for one image's
    latent `shape` (C, H, W), equal to A1111's ImageRNG(...).next() with that source. On the CPU except
    for CUDA's own GPU noise."""
    rng = ImageRNG(shape, seeds, subseeds, subseed_strength, seed_resize_from_h, seed_resize_from_w, source)
    return rng.first()
