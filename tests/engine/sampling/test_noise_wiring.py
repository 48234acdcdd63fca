"""A run's noise through engine.sampling.generate on a tiny checkpoint: variation seeds, seed resize, the
noise sources, ENSD and eta, and what the infotext says about them (engine.sampling.noise).

64x64 images, 2 steps: pixels carry no meaning, only identity. Equal means byte-equal.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest
import torch
from diffusers import StableDiffusionPipeline
from PIL import Image

from webui.core import infotext
from webui.core.errors import InvalidParameter
from webui.core.params import GenerationParams, Img2Img, Txt2Img
from webui.core.requests import Result
from webui.engine import rng
from webui.engine.checkpoints.manager import ModelManager
from webui.engine.sampling import generate
from webui.engine.sampling.noise import NoiseOptions
from webui.plugins.api import parameter_axes
from webui.services.job import Job

BASE = Txt2Img(
    prompt="a red cube", steps=2, cfg_scale=5.0, sampler_name="Euler", seed=1234, width=64, height=64
)

pytestmark = [
    pytest.mark.usefixtures("one_torch_thread"),
    pytest.mark.filterwarnings("ignore:Should have ta>=t0"),
]


def run(manager: ModelManager, params: GenerationParams, **options: Any) -> Result:
    job = Job(params=None, kind="txt2img", clock=time.monotonic)
    return generate.run(params, manager, job, noise_options=NoiseOptions(**options))


def pixels(result: Result) -> list[bytes]:
    return [image.tobytes() for image in result.images]


def test_variation_strength_0_is_the_seed_image_and_1_the_subseed_image(manager: ModelManager) -> None:
    plain = run(manager, BASE.replace(sampler_name="Euler a"))
    weak = run(manager, BASE.replace(sampler_name="Euler a", subseed=99, subseed_strength=0.0))
    assert pixels(weak) == pixels(plain)
    # a deterministic sampler: strength 1 starts from the subseed's noise and nothing else is drawn
    of_subseed = run(manager, BASE.replace(seed=99))
    full = run(manager, BASE.replace(subseed=99, subseed_strength=1.0))
    half = run(manager, BASE.replace(subseed=99, subseed_strength=0.5))
    assert pixels(full) == pixels(of_subseed)
    assert pixels(half) != pixels(full) and pixels(half) != pixels(run(manager, BASE))


def test_a_batch_with_a_variation_strength_shares_the_seed_and_counts_up_the_subseeds(
    manager: ModelManager,
) -> None:
    # batches of one: a batch's images differ from single ones by float rounding in the UNet
    result = run(manager, BASE.replace(subseed=50, subseed_strength=0.3, n_iter=3))
    assert result.seeds == (1234,) * 3 and result.subseeds == (50, 51, 52)
    fields = [infotext.parse(text) for text in result.infotexts]
    assert [f["Variation seed"] for f in fields] == ["50", "51", "52"]
    assert {f["Variation seed strength"] for f in fields} == {"0.3"}
    # the third image remade alone from its infotext
    again = run(manager, infotext.to_params(fields[2]))
    assert pixels(again) == [pixels(result)[2]]


def test_a_random_variation_seed_is_resolved_and_reported(manager: ModelManager) -> None:
    result = run(manager, BASE.replace(subseed=-1, subseed_strength=0.2))
    assert result.subseeds and result.subseeds[0] >= 0
    assert infotext.parse(result.infotexts[0])["Variation seed"] == str(result.subseeds[0])


def test_the_initial_latents_are_the_batchs_image_noise(
    manager: ModelManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    handed: list[torch.Tensor] = []
    original = StableDiffusionPipeline.prepare_latents

    def recording(self: Any, *args: Any, **kwargs: Any) -> Any:
        latents = kwargs.get("latents", args[-1] if args else None)
        handed.append(latents.clone())
        return original(self, *args, **kwargs)

    monkeypatch.setattr(StableDiffusionPipeline, "prepare_latents", recording)
    params = BASE.replace(
        subseed=7, subseed_strength=0.4, seed_resize_from_w=48, seed_resize_from_h=80, batch_size=2
    )
    run(manager, params, randn_source="CPU")
    # the tiny VAE scales by 2: 32x32 latents (seed resize divides by 8 whatever the model, as A1111)
    expected = rng.image_noise((4, 32, 32), [1234, 1234], [7, 8], 0.4, 80, 48, source="CPU")
    assert len(handed) == 1
    assert torch.equal(handed[0], expected)


def test_noise_sources_differ_and_each_remakes_its_image(manager: ModelManager) -> None:
    cpu = [run(manager, BASE, randn_source="CPU") for _ in range(2)]
    nv = [run(manager, BASE, randn_source="NV") for _ in range(2)]
    assert pixels(cpu[0]) == pixels(cpu[1]) and pixels(nv[0]) == pixels(nv[1])
    assert pixels(cpu[0]) != pixels(nv[0])
    # without CUDA, "GPU" is NV's numbers; the infotext names the source only when it is not GPU
    gpu = run(manager, BASE, randn_source="GPU")
    if not torch.cuda.is_available():
        assert pixels(gpu) == pixels(nv[0])
    assert infotext.parse(cpu[0].infotexts[0])["RNG"] == "CPU"
    assert infotext.parse(nv[0].infotexts[0])["RNG"] == "NV"
    assert "RNG" not in infotext.parse(gpu.infotexts[0])


def test_ancestral_step_noise_comes_from_the_rng(manager: ModelManager) -> None:
    ancestral = BASE.replace(sampler_name="Euler a", steps=3)
    first, second = run(manager, ancestral), run(manager, ancestral)
    assert pixels(first) == pixels(second)
    with_ensd = run(manager, ancestral, eta_noise_seed_delta=31337)
    assert pixels(with_ensd) != pixels(first)
    assert infotext.parse(with_ensd.infotexts[0])["ENSD"] == "31337"
    assert "ENSD" not in infotext.parse(first.infotexts[0])
    # the same initial noise (strength 1 towards seed 99) with another seed's step noise
    varied = run(manager, ancestral.replace(subseed=99, subseed_strength=1.0))
    assert pixels(varied) != pixels(run(manager, ancestral.replace(seed=99)))
    deterministic = run(manager, BASE, eta_noise_seed_delta=31337)
    assert pixels(deterministic) == pixels(run(manager, BASE))  # Euler draws nothing: ENSD changes nothing
    assert "ENSD" not in infotext.parse(deterministic.infotexts[0])  # and A1111 does not write it


def test_seed_resize_from_the_same_size_changes_nothing(manager: ModelManager) -> None:
    # A1111 makes the noise at (W/8, H/8) whatever the model: the tiny VAE's 32x32 latents are 256x256's
    same = run(manager, BASE.replace(seed_resize_from_w=256, seed_resize_from_h=256))
    assert pixels(same) == pixels(run(manager, BASE))
    fields = infotext.parse(same.infotexts[0])
    assert fields["Seed resize from"] == "256x256"
    other = run(manager, BASE.replace(seed_resize_from_w=128, seed_resize_from_h=96))
    assert pixels(other) != pixels(same)
    read = infotext.to_params(infotext.parse(other.infotexts[0]))
    assert (read.seed_resize_from_w, read.seed_resize_from_h) == (128, 96)


def test_infotext_leaves_out_what_a1111_leaves_out(manager: ModelManager) -> None:
    fields = infotext.parse(run(manager, BASE.replace(subseed=5, seed_resize_from_w=64)).infotexts[0])
    absent = (
        "Variation seed",
        "Variation seed strength",
        "Seed resize from",
        "ENSD",
        "RNG",
        "Eta",
        "Eta DDIM",
    )
    assert [key for key in absent if key in fields] == []
    assert not fields["Version"].startswith("v0")


def test_ddim_eta_from_the_option_or_the_request(manager: ModelManager) -> None:
    ddim = BASE.replace(sampler_name="DDIM", steps=3)
    plain = run(manager, ddim)
    by_option = run(manager, ddim, eta_ddim=0.5)
    by_request = run(manager, ddim.replace(eta=0.5), eta_ddim=0.9)
    assert pixels(by_option) != pixels(plain) and pixels(by_request) == pixels(by_option)
    assert infotext.parse(by_request.infotexts[0])["Eta DDIM"] == "0.5"
    assert "Eta DDIM" not in infotext.parse(plain.infotexts[0])
    assert pixels(run(manager, ddim, eta_ddim=0.5)) == pixels(by_option)  # its step noise is the RNG's


def test_euler_a_takes_eta_as_k_diffusion_does(manager: ModelManager) -> None:
    ancestral = BASE.replace(sampler_name="Euler a", steps=3)
    full = run(manager, ancestral)
    half = run(manager, ancestral.replace(eta=0.5))
    none = run(manager, ancestral, eta_ancestral=0.0)
    assert len({pixels(full)[0], pixels(half)[0], pixels(none)[0]}) == 3
    # eta 0 leaves no noise in the step: plain Euler on the same sigmas (up to float rounding)
    euler = run(manager, ancestral.replace(sampler_name="Euler"))
    difference = np.abs(np.asarray(none.images[0], int) - np.asarray(euler.images[0], int))
    assert difference.max() <= 1
    assert infotext.parse(half.infotexts[0])["Eta"] == "0.5"
    assert "Eta" not in infotext.parse(full.infotexts[0])
    assert infotext.to_params(infotext.parse(half.infotexts[0])).eta is None  # an option, as in A1111


@pytest.mark.parametrize(
    "sampler", ["DPM2 a", "DPM++ 2S a", "DPM++ SDE", "DPM++ 2M SDE", "DPM++ 2M SDE Heun", "DPM++ 3M SDE"]
)
def test_every_ancestral_and_sde_sampler_takes_eta(manager: ModelManager, sampler: str) -> None:
    params = BASE.replace(sampler_name=sampler, steps=4)
    default = run(manager, params)
    assert pixels(run(manager, params.replace(eta=1.0))) == pixels(default)  # A1111's default eta
    half = run(manager, params.replace(eta=0.5))
    by_option = run(manager, params, eta_ancestral=0.5)
    assert pixels(half) != pixels(default) and pixels(by_option) == pixels(half)
    assert pixels(run(manager, params, eta_ancestral=0.0)) not in (pixels(half), pixels(default))
    assert infotext.parse(half.infotexts[0])["Eta"] == "0.5"
    assert "Eta" not in infotext.parse(default.infotexts[0])


def close(a: Result, b: Result) -> bool:
    difference = np.abs(np.asarray(a.images[0], int) - np.asarray(b.images[0], int))
    return bool(difference.max() <= 1)


@pytest.mark.parametrize(
    ("ancestral", "plain"), [("DPM2 a", "DPM2"), ("DPM++ 2M SDE", "DPM++ 2M"), ("Euler a", "Euler")]
)
def test_eta_0_is_the_samplers_noiseless_twin(manager: ModelManager, ancestral: str, plain: str) -> None:
    # k-diffusion: with eta 0 the ancestral step is the whole step and no noise is added
    params = BASE.replace(steps=4, scheduler="Karras")
    none = run(manager, params.replace(sampler_name=ancestral, eta=0.0))
    assert close(none, run(manager, params.replace(sampler_name=plain)))
    assert not close(run(manager, params.replace(sampler_name=ancestral)), none)


def test_a_negative_eta_is_refused(manager: ModelManager) -> None:
    with pytest.raises(InvalidParameter, match="Eta must be 0 or more"):
        run(manager, BASE.replace(sampler_name="Euler a", eta=-0.5))


def blocks() -> Image.Image:
    values = np.random.default_rng(0).integers(0, 255, (8, 8, 3), dtype=np.uint8)
    return Image.fromarray(values).resize((64, 64), Image.Resampling.NEAREST)


@pytest.mark.parametrize("masked", [False, True], ids=["img2img", "inpaint latent noise"])
def test_img2img_and_inpaint_draw_the_batchs_noise(manager: ModelManager, masked: bool) -> None:
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (16, 16, 48, 48))
    base = Img2Img.from_txt2img(
        BASE,
        init_images=(blocks(),),
        denoising_strength=0.8,
        mask=mask if masked else None,
        inpainting_fill=2,
    )
    of_subseed = run(manager, base.replace(seed=99))
    full = run(manager, base.replace(subseed=99, subseed_strength=1.0))
    assert pixels(full) == pixels(of_subseed)
    assert pixels(full) != pixels(run(manager, base))
    assert pixels(run(manager, base, randn_source="CPU")) != pixels(run(manager, base, randn_source="NV"))


def test_variation_axes_exist() -> None:
    axes = {axis.label: axis.field for axis in parameter_axes()}
    assert axes["Var. seed"] == "subseed" and axes["Var. strength"] == "subseed_strength"


def test_version_is_not_read_as_an_old_a1111() -> None:
    """A1111's rule (modules/infotext_versions.py, as facts): a Version whose first two '-'-separated parts
    (when there are more) parse as a PEP 440 version turns on back-compat options below 1.6.0 (old prompt
    editing, DDIM/PLMS cond padding) and below 1.7.0-225 (downcast alphas_cumprod); an unparsable one
    turns on nothing."""
    from packaging.version import InvalidVersion, Version

    def legacy_options(text: str) -> list[str]:
        parts = text.split("-")
        head = "-".join(parts[:2]) if len(parts) > 2 else text
        try:
            version = Version(head)
        except InvalidVersion:
            return []
        found = ["Old prompt editing timelines", "Pad conds v0"] if version < Version("1.6.0") else []
        return found + (["Downcast alphas_cumprod"] if version < Version("1.7.0-225") else [])

    assert legacy_options("v0.1.0") == [
        "Old prompt editing timelines",
        "Pad conds v0",
        "Downcast alphas_cumprod",
    ]
    assert legacy_options("v1.10.1") == []
    assert legacy_options(generate.INFOTEXT_VERSION) == []


def test_variation_strength_is_checked() -> None:
    with pytest.raises(InvalidParameter, match="subseed_strength"):
        BASE.replace(subseed_strength=1.5).validate()
