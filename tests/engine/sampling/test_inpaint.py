"""Inpaint through engine.generate.run: what stays, what is repainted, and inpainting checkpoints.

Ordinary checkpoints keep the unmasked latents during denoising and the paste-back keeps the unmasked
pixels exactly; inpainting checkpoints (9-channel UNet) get the mask and the masked image as UNet input.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import StableDiffusionInpaintPipeline, StableDiffusionXLInpaintPipeline
from PIL import Image, ImageFilter

from tools.tiny_models import TinyCheckpoint
from webui.core import infotext
from webui.core.params import MASKED_CONTENT, GenerationParams, Img2Img, Txt2Img
from webui.core.requests import Result
from webui.engine.checkpoints.manager import ModelManager
from webui.engine.sampling import generate
from webui.engine.sampling.image_prep import blur_reach
from webui.services.job import Job

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SIZE = (96, 72)  # the input's; the output is 64x64
BOX = (32, 24, 64, 48)


def blocks(width: int, height: int, seed: int = 0) -> Image.Image:
    colours = np.random.default_rng(seed).integers(0, 256, (3, 4, 3), dtype=np.uint8)
    return Image.fromarray(colours).resize((width, height), Image.Resampling.NEAREST)


def box_mask(size: tuple[int, int] = SIZE, box: tuple[int, int, int, int] = BOX) -> Image.Image:
    mask = Image.new("L", size)
    mask.paste(255, box)
    return mask


INPUT = blocks(*SIZE)
BASE = Img2Img(
    prompt="a red cube",
    steps=4,
    cfg_scale=1.0,  # no CFG: half the UNet work, and guidance does not matter here
    sampler_name="Euler a",
    seed=42,
    width=64,
    height=64,
    init_images=(INPUT,),
    mask=box_mask(),
    denoising_strength=0.75,
    mask_blur=4,
)


@pytest.fixture(scope="module")
def manager(
    tmp_path_factory: pytest.TempPathFactory,
    tiny_sd1_fast: TinyCheckpoint,
    make_manager: Callable[..., ModelManager],
) -> ModelManager:
    return make_manager(tmp_path_factory.mktemp("inpaint"), tiny_sd1_fast)


@pytest.fixture(scope="module")
def inpainting(
    tmp_path_factory: pytest.TempPathFactory,
    tiny_sd1_inpaint: TinyCheckpoint,
    make_manager: Callable[..., ModelManager],
) -> ModelManager:
    return make_manager(tmp_path_factory.mktemp("inpainting"), tiny_sd1_inpaint)


def run(manager: ModelManager, params: GenerationParams) -> Result:
    return generate.run(params, manager, Job(params=None, kind="img2img", clock=time.monotonic))


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def near(mask: Image.Image, distance: int) -> np.ndarray:
    """Where `mask` is set or within `distance` pixels of it."""
    return np.asarray(mask.filter(ImageFilter.MaxFilter(2 * distance + 1))) > 0


def expected_outside(params: Img2Img) -> tuple[np.ndarray, np.ndarray]:
    """The pixels the output must keep and where: the input (resized for "Whole picture") beyond the
    blur's reach around the mask (+1 for the mask's resampling)."""
    assert params.mask is not None
    if params.inpaint_full_res:
        image, mask = params.init_images[0], params.mask
    else:
        size = (params.width, params.height)
        image, mask = params.init_images[0].resize(size, Image.Resampling.LANCZOS), params.mask.resize(size)
    return pixels(image), ~near(mask, blur_reach(params.mask_blur) + 1)


@contextmanager
def unet_inputs(unet: torch.nn.Module) -> Iterator[list[torch.Tensor]]:
    seen: list[torch.Tensor] = []
    handle = unet.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().clone()))
    try:
        yield seen
    finally:
        handle.remove()


@pytest.mark.parametrize("only_masked", [False, True], ids=["whole picture", "only masked"])
@pytest.mark.parametrize("content", range(len(MASKED_CONTENT)), ids=MASKED_CONTENT)
def test_pixels_outside_the_blurred_mask_are_the_inputs(
    manager: ModelManager, content: int, only_masked: bool
) -> None:
    params = BASE.replace(inpainting_fill=content, inpaint_full_res=only_masked)
    result = run(manager, params)
    out = pixels(result.images[0])
    reference, outside = expected_outside(params)
    assert out.shape == reference.shape  # "Only masked" pastes into the full-size input
    assert (out[outside] == reference[outside]).all()
    inside = np.asarray(box_mask() if only_masked else box_mask().resize((64, 64))) > 0
    assert np.abs(out[inside] - reference[inside]).mean() > 5  # and the mask was repainted
    fields = infotext.parse(result.infotexts[0])
    assert fields["Mask blur"] == "4" and fields["Denoising strength"] == "0.75"
    written = MASKED_CONTENT[content] if MASKED_CONTENT[content] != "original" else None  # A1111's default
    assert fields.get("Masked content") == written
    assert fields.get("Inpaint area") == ("Only masked" if only_masked else None)
    assert fields.get("Masked area padding") == ("32" if only_masked else None)


def test_masked_content_decides_what_the_sampler_starts_from(manager: ModelManager) -> None:
    inside = np.asarray(box_mask().resize((64, 64))) > 0
    params = BASE.replace(denoising_strength=0.5)
    results = [pixels(run(manager, params.replace(inpainting_fill=c)).images[0])[inside] for c in range(4)]
    for a in range(4):
        for b in range(a + 1, 4):
            assert np.abs(results[a] - results[b]).mean() > 1, (MASKED_CONTENT[a], MASKED_CONTENT[b])


def test_inpaint_not_masked_keeps_the_mask_instead(manager: ModelManager) -> None:
    params = BASE.replace(inpainting_mask_invert=1, mask_blur=2, inpaint_full_res=False)
    result = run(manager, params)
    out = pixels(result.images[0])
    reference = pixels(INPUT.resize((64, 64), Image.Resampling.LANCZOS))
    repainted = Image.eval(box_mask(), lambda value: 255 - value).resize((64, 64))
    kept = ~near(repainted, blur_reach(2) + 1)  # the box's inside, less the blur's reach
    assert kept.sum() > 50 and (out[kept] == reference[kept]).all()
    around = ~near(box_mask().resize((64, 64)), blur_reach(2) + 1)
    assert np.abs(out[around] - reference[around]).mean() > 5
    assert infotext.parse(result.infotexts[0])["Mask mode"] == "Inpaint not masked"


def test_an_empty_mask_keeps_the_input_or_falls_back_to_img2img(manager: ModelManager) -> None:
    empty = BASE.replace(mask=Image.new("L", SIZE))
    whole = run(manager, empty)
    assert whole.images[0].tobytes() == INPUT.resize((64, 64), Image.Resampling.LANCZOS).tobytes()
    assert whole.warnings == ("The mask is empty: nothing was repainted",)
    only = run(manager, empty.replace(inpaint_full_res=True))
    plain = run(manager, BASE.replace(mask=None))
    assert only.images[0].tobytes() == plain.images[0].tobytes()
    assert "plain img2img" in only.warnings[0]
    fields = infotext.parse(only.infotexts[0])
    assert "Inpaint area" not in fields and not only.params.inpaint_full_res and fields["Mask blur"] == "4"


def test_a_transparent_layer_mask_of_another_size_works(manager: ModelManager) -> None:
    layer = Image.new("RGBA", (48, 36), (0, 0, 0, 0))  # half size, painted where the box is
    layer.paste((0, 0, 0, 255), (16, 12, 32, 24))
    result = run(manager, BASE.replace(mask=layer, inpaint_full_res=True))
    reference, outside = expected_outside(BASE.replace(inpaint_full_res=True))
    out = pixels(result.images[0])
    assert (out[outside] == reference[outside]).all() and np.abs(out - reference).mean() > 0.5


def test_an_inpainting_checkpoint_is_detected_and_conditioned_on_the_mask(inpainting: ModelManager) -> None:
    loaded = inpainting.get()
    assert loaded.architecture.inpainting and loaded.architecture.config_name == "sd1-inpaint"
    assert isinstance(loaded.pipe, StableDiffusionInpaintPipeline)
    assert loaded.pipeline(StableDiffusionInpaintPipeline) is loaded.pipe  # no second pipeline, no copy
    params = BASE.replace(inpaint_full_res=False)
    with unet_inputs(loaded.pipe.unet) as seen:
        result = run(inpainting, params)
    assert seen and all(x.shape[1] == 9 for x in seen)
    mask_channel = seen[0][0, 4]  # latents, mask, masked-image latents
    assert set(mask_channel.unique().tolist()) == {0.0, 1.0}
    assert mask_channel[16, 16] == 1 and mask_channel[2, 2] == 0  # the box is at the centre
    assert abs(mask_channel.mean().item() - (64 - 32) * (48 - 24) / (96 * 72)) < 0.03
    reference, outside = expected_outside(params)
    out = pixels(result.images[0])
    assert (out[outside] == reference[outside]).all() and np.abs(out - reference).mean() > 1
    assert infotext.parse(result.infotexts[0])["Conditional mask weight"] == "1"


def test_an_inpainting_checkpoint_also_does_txt2img_and_img2img(inpainting: ModelManager) -> None:
    """As A1111: a full mask over an empty (mid-grey) image."""
    loaded = inpainting.get()
    txt2img = Txt2Img(
        prompt="a red cube", steps=2, cfg_scale=1.0, sampler_name="Euler a", seed=5, width=64, height=64
    )
    with unet_inputs(loaded.pipe.unet) as seen:
        first = run(inpainting, txt2img)
    assert seen[0].shape[1] == 9 and bool((seen[0][:, 4] == 1).all())
    again = run(inpainting, txt2img)
    other = run(inpainting, txt2img.replace(seed=6))
    assert first.images[0].tobytes() == again.images[0].tobytes()
    assert np.abs(pixels(first.images[0]) - pixels(other.images[0])).mean() > 1
    fields = infotext.parse(first.infotexts[0])
    assert "Denoising strength" not in fields and fields["Conditional mask weight"] == "1"
    with unet_inputs(loaded.pipe.unet) as seen:
        plain = run(inpainting, BASE.replace(mask=None, denoising_strength=0.5))
    assert len(seen) == 2 and bool((seen[0][:, 4] == 1).all())
    assert plain.images[0].size == (64, 64) and "Mask blur" not in infotext.parse(plain.infotexts[0])


@pytest.mark.parametrize("fixture", ["tiny_sdxl", "tiny_sdxl_inpaint"])
def test_sdxl_img2img_and_inpaint_with_either_architecture(
    request: pytest.FixtureRequest, tmp_path: Path, fixture: str, make_manager: Callable[..., ModelManager]
) -> None:
    sdxl = make_manager(tmp_path, request.getfixturevalue(fixture))
    loaded = sdxl.get()
    assert loaded.architecture.inpainting == (fixture == "tiny_sdxl_inpaint")
    params = BASE.replace(steps=2, denoising_strength=1.0)
    result = run(sdxl, params)
    assert isinstance(loaded.pipeline(StableDiffusionXLInpaintPipeline), StableDiffusionXLInpaintPipeline)
    reference, outside = expected_outside(params)
    out = pixels(result.images[0])
    assert (out[outside] == reference[outside]).all() and np.abs(out - reference).mean() > 1
    plain = run(sdxl, params.replace(mask=None))
    assert plain.images[0].size == (64, 64) and pixels(plain.images[0]).std() > 1
