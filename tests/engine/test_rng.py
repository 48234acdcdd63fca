"""webui.engine.rng: A1111's noise sources (CPU, GPU, NV), variation seeds, seed resize and ENSD.

NV is checked three ways: the Philox4x32-10 known-answer vectors of Random123, a scalar per-element
Philox + Box-Muller written here from the specification, and numbers CUDA's torch.randn gave that
people published."""

from __future__ import annotations

import math
from unittest import mock

import numpy as np
import pytest
import torch
from diffusers import EulerAncestralDiscreteScheduler
from diffusers.schedulers import scheduling_euler_ancestral_discrete

from webui.core.errors import InvalidParameter
from webui.engine import rng

WORD = 0xFFFFFFFF


def reference_philox(counter: tuple[int, int, int, int], key: tuple[int, int]) -> tuple[int, ...]:
    """One Philox4x32-10 block, one Python int at a time (Salmon et al. 2011, section 3.2)."""
    c0, c1, c2, c3 = counter
    k0, k1 = key
    for _ in range(10):
        hi_lo0 = 0xD2511F53 * c0
        hi_lo1 = 0xCD9E8D57 * c2
        c0, c1, c2, c3 = (hi_lo1 >> 32) ^ c1 ^ k0, hi_lo1 & WORD, (hi_lo0 >> 32) ^ c3 ^ k1, hi_lo0 & WORD
        k0, k1 = (k0 + 0x9E3779B9) & WORD, (k1 + 0xBB67AE85) & WORD
    return c0, c1, c2, c3


def reference_cuda_randn(seed: int, draw: int, count: int) -> np.ndarray:
    """What CUDA's torch.randn gives for a seed: element i from cuRAND's curand_init(seed, subsequence=i,
    offset=4·draw), i.e. counter (draw, 0, i, 0), key = the seed's two words; curand_normal's first
    number is Box-Muller's sine branch of the block's first two words (cuRAND's float32 constants)."""
    inv = float(np.float32(2.3283064e-10))
    inv_2pi = float(np.float32(2.3283064e-10 * 6.2831855))
    values = []
    for i in range(count):
        x, y, _, _ = reference_philox((draw, 0, i, 0), (seed & WORD, seed >> 32))
        u, v = x * inv + inv / 2, y * inv_2pi + inv_2pi / 2
        values.append(math.sqrt(-2.0 * math.log(u)) * math.sin(v))
    return np.array(values, dtype=np.float32)


# Random123's tests/kat_vectors, the "philox4x32 10" lines: counter words, key words -> output words
RANDOM123_KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((WORD, WORD, WORD, WORD), (WORD, WORD), (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
]


@pytest.mark.parametrize(("counter", "key", "expected"), RANDOM123_KAT)
def test_philox_matches_random123_known_answers(
    counter: tuple[int, int, int, int], key: tuple[int, int], expected: tuple[int, ...]
) -> None:
    words = rng.philox4x32_10(np.array(counter, dtype=np.uint32).reshape(4, 1), key)
    assert tuple(int(w) for w in words[:, 0]) == expected
    assert reference_philox(counter, key) == expected  # the test's own reference is right too


@pytest.mark.parametrize("seed", [0, 1, 31337, 2**32 - 1, 2**32 + 5, 2**63 + 11])
@pytest.mark.parametrize("shape", [(4, 3, 5), (1, 1, 2), (16, 2, 3)])
def test_nv_equals_the_scalar_reference(seed: int, shape: tuple[int, int, int]) -> None:
    count = math.prod(shape)
    generator = rng.ImageRNG(shape, [seed], source="NV")
    for draw in range(3):  # the initial noise, then two per-step draws
        noise = generator.next()[0].numpy().ravel()
        np.testing.assert_array_max_ulp(noise, reference_cuda_randn(seed, draw, count), maxulp=1)


def test_nv_equals_published_cuda_values() -> None:
    # A1111's modules/rng_philox.py docstring: torch.manual_seed(0); torch.randn((3, 4), device="cuda")
    a1111 = [-0.92466259, -0.42534415, -2.6438457, 0.14518388, -0.12086647, -0.57972564]
    a1111 += [-0.62285122, -0.32838709, -1.07454231, -0.36314407, -1.67105067, 2.26550497]
    noise = rng.image_noise((1, 3, 4), [0], source="NV")
    np.testing.assert_allclose(noise.ravel().numpy(), a1111, atol=1e-6)

    # pytorch/pytorch#79496: torch.manual_seed(10); torch.randn(3, device="cuda")
    noise = rng.image_noise((1, 1, 3), [10], source="NV")
    np.testing.assert_allclose(noise.ravel().numpy(), [-0.1029, 1.6810, -0.2708], atol=5e-5)

    # pytorch/pytorch#158398: randn([1, 64, 2048], generator=cuda Generator.manual_seed(42)), the printed
    # corners of rows 0 and 1
    noise = rng.image_noise((1, 64, 2048), [42], source="NV")[0, 0]
    corners = torch.cat([noise[0, :3], noise[0, -3:], noise[1, :3]])
    expected = [0.1940, 2.1614, -0.1721, 1.4540, -2.7733, -0.8932, -0.4574, 0.8063, 0.1580]
    np.testing.assert_allclose(corners.numpy(), expected, atol=5e-5)


# kapilsh/cuda-mode-lecture README: torch.manual_seed(0), then on CUDA a = randn(8, 8), b = randn(8, 8),
# c = randn(1, 8); printed: a, and relu(a + 0.5 b + c)
CUDA_LECTURE_A = """
-0.9247 -0.4253 -2.6438 0.1452 -0.1209 -0.5797 -0.6229 -0.3284
-1.0745 -0.3631 -1.6711 2.2655 0.3117 -0.1842 1.2866 1.1820
-0.1271 1.2169 1.4353 1.0605 -0.4941 -1.4244 -0.7244 -1.2973
0.0697 -0.0074 1.8969 0.6878 -0.0779 -0.8373 1.3506 -0.2879
-0.5965 -0.3283 -0.9086 -0.8059 -0.7407 -0.0504 0.5435 1.5150
0.0141 0.4532 1.6349 0.7124 -0.1806 1.0252 -1.4622 -0.7554
-0.1836 0.3824 0.3918 -0.0830 0.8971 -1.1123 0.1116 0.4863
-0.5499 -0.3231 -0.5469 0.9049 0.2837 0.1210 0.4730 -1.0823
"""
CUDA_LECTURE_RELU = """
1.7098 0 0 0 0.67049 0 0.34424 0.011223
1.8750 0 0 2.2105 0.66808 0 1.8445 1.9246
2.2614 1.3964 0.51802 2.0114 0 0 0.27715 0
2.4750 0 1.9079 0.54869 0.37923 0 3.1791 0.66843
1.8234 0 0.11147 0 0 0 2.4250 3.2593
2.2903 0 1.1721 0.69331 1.0583 0.67518 0 0.26185
1.5804 0 0.90740 0.16670 0.055230 0 1.5325 0.35984
1.5554 0 0 0.94380 0.0029795 0.074125 1.6286 0
"""


def test_nv_successive_draws_equal_published_cuda_values() -> None:
    """Each torch.randn call on CUDA moves the Philox counter one block on; so does each next()."""
    generator = rng.ImageRNG((1, 8, 8), [0], source="NV")
    a, b, third = (generator.next()[0, 0].double() for _ in range(3))
    c = third[0]  # a (1, 8) draw is the first 8 numbers of a larger one
    np.testing.assert_allclose(a.numpy(), np.loadtxt(CUDA_LECTURE_A.splitlines()), atol=5e-5)
    expected = np.loadtxt(CUDA_LECTURE_RELU.splitlines())
    np.testing.assert_allclose(torch.relu(a + 0.5 * b + c).numpy(), expected, atol=1e-4)


def test_cpu_source_is_torch_randn_with_a_cpu_generator_per_image() -> None:
    shape, seeds = (4, 6, 5), [7, 8, 2**32 + 1]
    generator = rng.ImageRNG(shape, seeds, source="CPU")
    torch_generators = [torch.Generator().manual_seed(seed) for seed in seeds]
    for _ in range(2):  # the initial noise, then the first per-step noise
        expected = torch.stack([torch.randn(shape, generator=g) for g in torch_generators])
        assert torch.equal(generator.next(), expected)


@pytest.mark.skipif(torch.cuda.is_available(), reason="on CUDA, GPU is CUDA's own randn")
def test_gpu_source_without_cuda_is_nv() -> None:
    def noise(source: str) -> torch.Tensor:  # with a variation seed and seed resize, all of A1111's paths
        return rng.image_noise((4, 8, 8), [1, 2], [4, 5], 0.3, 48, 40, source=source)

    assert torch.equal(noise("GPU"), noise("NV"))
    assert not torch.equal(noise("GPU"), noise("CPU"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_source_on_cuda_is_cudas_randn_and_equals_nv() -> None:
    noise = rng.image_noise((4, 16, 16), [5], source="GPU")
    expected = torch.randn((4, 16, 16), generator=torch.Generator("cuda").manual_seed(5), device="cuda")
    assert torch.equal(noise[0], expected)
    torch.testing.assert_close(noise.cpu(), rng.image_noise((4, 16, 16), [5], source="NV"))


def test_unknown_source_is_a_clear_error() -> None:
    with pytest.raises(InvalidParameter, match="GPU, CPU, NV"):
        rng.image_noise((4, 8, 8), [1], source="TPU")


@pytest.mark.parametrize("source", ["CPU", "NV"])
def test_variation_strength_0_and_1_are_exactly_the_seed_and_the_subseed(source: str) -> None:
    shape = (4, 16, 16)
    seed_noise = rng.image_noise(shape, [11, 12], source=source)
    subseed_noise = rng.image_noise(shape, [21, 22], source=source)
    at = {
        strength: rng.image_noise(shape, [11, 12], [21, 22], strength, source=source)
        for strength in (0.0, 1.0, 0.5)
    }
    assert torch.equal(at[0.0], seed_noise)
    assert torch.equal(at[1.0], subseed_noise)
    half = at[0.5]
    assert not torch.allclose(half, seed_noise, atol=0.1) and not torch.allclose(
        half, subseed_noise, atol=0.1
    )
    assert 0.9 < float(half.std()) < 1.1  # slerp keeps unit variance (a plain average would give ~0.71)


def test_slerp_is_per_channel_and_column_and_falls_back_for_parallel_noise() -> None:
    low, high = torch.randn((2, 5, 3), generator=torch.Generator().manual_seed(1)).double().unbind(0)
    low, high = low.reshape(1, 5, 3), high.reshape(1, 5, 3)
    result = rng.slerp(0.3, low, high)
    for column in range(3):  # each (channel, column) vector along H is interpolated on its own
        a, b = low[0, :, column], high[0, :, column]
        omega = math.acos(float(a @ b / (a.norm() * b.norm())))
        expected = (math.sin(0.7 * omega) * a + math.sin(0.3 * omega) * b) / math.sin(omega)
        torch.testing.assert_close(result[0, :, column], expected)
    # nearly parallel: A1111 mixes linearly, its weights the other way round
    torch.testing.assert_close(rng.slerp(0.3, low, 2 * low), 0.3 * low + 0.7 * 2 * low)


def test_missing_subseeds_count_as_subseed_0() -> None:
    noise = rng.image_noise((4, 8, 8), [1, 2], [7], 1.0, source="NV")
    assert torch.equal(noise[0], rng.image_noise((4, 8, 8), [7], source="NV")[0])
    assert torch.equal(noise[1], rng.image_noise((4, 8, 8), [0], source="NV")[0])


@pytest.mark.parametrize("source", ["CPU", "NV"])
def test_seed_resize_from_the_same_size_changes_nothing(source: str) -> None:
    plain = rng.image_noise((4, 12, 10), [3, 4], [5, 6], 0.4, source=source)
    resized = rng.image_noise((4, 12, 10), [3, 4], [5, 6], 0.4, 96, 80, source=source)
    assert torch.equal(resized, plain)


@pytest.mark.parametrize("source", ["CPU", "NV"])
def test_seed_resize_places_the_from_size_noise_in_the_centre(source: str) -> None:
    own = rng.image_noise((4, 12, 10), [9], source=source)[0]  # what the image's generator draws
    # from 64x48 pixels (8x6 latent) into 12x10: pasted whole, 2 rows and 2 columns in
    small = rng.image_noise((4, 8, 6), [9], source=source)[0]
    noise = rng.image_noise((4, 12, 10), [9], seed_resize_from_h=64, seed_resize_from_w=48, source=source)[0]
    assert torch.equal(noise[:, 2:10, 2:8], small)
    outside = torch.ones(12, 10, dtype=torch.bool)
    outside[2:10, 2:8] = False
    assert torch.equal(noise[:, outside], own[:, outside])
    # from 152x40 (19x5 latent) into 12x10: A1111 rounds the offset (12 - 19) // 2 down to -4, so it cuts
    # 4 rows from the top and the bottom, pastes 11 rows and the 12th keeps the image's own noise
    large = rng.image_noise((4, 19, 5), [9], source=source)[0]
    noise = rng.image_noise((4, 12, 10), [9], seed_resize_from_h=152, seed_resize_from_w=40, source=source)[0]
    assert torch.equal(noise[:, :11, 2:7], large[:, 4:15, :])
    assert torch.equal(noise[:, 11], own[:, 11])
    assert torch.equal(noise[:, :, [0, 1, 7, 8, 9]], own[:, :, [0, 1, 7, 8, 9]])


@pytest.mark.parametrize("source", ["CPU", "NV"])
def test_per_step_noise_continues_the_seed_or_starts_at_seed_plus_ensd(source: str) -> None:
    shape, seeds = (4, 8, 8), [100, 200]
    plain = rng.ImageRNG(shape, seeds, source=source)
    with_ensd = rng.ImageRNG(shape, seeds, source=source, eta_noise_seed_delta=31337)
    assert torch.equal(plain.next(), with_ensd.next())  # ENSD leaves the initial noise alone
    continued = rng.ImageRNG(shape, seeds, source=source)
    continued.first()
    assert torch.equal(plain.next(), continued.next())
    assert not torch.equal(plain.next(), rng.image_noise(shape, seeds, source=source))
    ensd_steps = [with_ensd.next(), with_ensd.next()]
    fresh = rng.ImageRNG(shape, [100 + 31337, 200 + 31337], source=source)
    assert torch.equal(ensd_steps[0], fresh.next()) and torch.equal(ensd_steps[1], fresh.next())


def test_euler_ancestral_takes_its_step_noise_through_randn_tensor() -> None:
    """The hook the integration uses: diffusers' Euler a draws its step noise with its module's
    randn_tensor. With ImageRNG.randn_tensor there (CPU source) a step equals diffusers' own step with
    CPU generators seeded alike and advanced past the initial noise."""
    shape, seeds = (4, 8, 8), [1, 2]
    sample = rng.image_noise(shape, seeds, source="CPU")
    model_output = torch.randn((2, *shape), generator=torch.Generator().manual_seed(99))

    def step(**kwargs: object) -> torch.Tensor:
        scheduler = EulerAncestralDiscreteScheduler(num_train_timesteps=1000)
        scheduler.set_timesteps(4)
        return scheduler.step(model_output, scheduler.timesteps[0], sample, **kwargs).prev_sample

    image_rng = rng.ImageRNG(shape, seeds, source="CPU")
    image_rng.first()
    with mock.patch.object(scheduling_euler_ancestral_discrete, "randn_tensor", image_rng.randn_tensor):
        ours = step()
    generators = [torch.Generator().manual_seed(seed) for seed in seeds]
    for generator in generators:
        torch.randn(shape, generator=generator)  # the initial noise
    assert torch.equal(ours, step(generator=generators))
    assert not torch.equal(ours, step(generator=[torch.Generator().manual_seed(seed) for seed in seeds]))
