"""ControlNet: tiny ControlNets (from the tiny UNets, output convolutions randomised) saved in the original
and the diffusers layout, loaded from a models/ControlNet folder, and run through engine.generate in
txt2img, img2img and inpaint. Tiny random models: pixels carry no meaning, only identity."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from diffusers import EulerDiscreteScheduler, StableDiffusionControlNetPipeline
from PIL import Image, ImageDraw
from safetensors.torch import load_file, save_file

from tools.tiny_controlnet import save_tiny_controlnet, tiny_controlnet
from tools.tiny_models import TinyCheckpoint
from webui.core import infotext
from webui.core.control_unit import CONTROL_MODES, ControlUnit
from webui.core.errors import ModelLoadError, ModelNotFound
from webui.core.hashing import HashCache
from webui.core.params import GenerationParams, Img2Img, Txt2Img
from webui.core.requests import Result
from webui.engine.checkpoints.manager import ModelManager
from webui.engine.checkpoints.registry import CheckpointRegistry
from webui.engine.controlnet import guidance as controlnet
from webui.engine.controlnet import image_fit, layout, preprocessors
from webui.engine.controlnet.library import ControlNetLibrary, legacy_hash
from webui.engine.devices import DeviceChoice
from webui.engine.sampling import generate
from webui.engine.sampling.hooks import ModelHooks
from webui.services.job import Job

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CPU = DeviceChoice(torch.device("cpu"), torch.float32)
SIZE = 64
SMALL = 32  # direct pipeline runs: 16x16 latents keep the tiny UNet's full-resolution attention cheap


def disc() -> Image.Image:
    image = Image.new("RGB", (SIZE, SIZE), "white")
    ImageDraw.Draw(image).ellipse((12, 12, 52, 52), fill="black")
    return image


def canny(**changes: Any) -> ControlUnit:
    return ControlUnit(module="canny", model="tiny-cn", image=disc(), processor_res=64).replace(**changes)


BASE = Txt2Img(prompt="a cat", negative_prompt="blurry", steps=2, cfg_scale=5.0, sampler_name="Euler", seed=7)
BASE = BASE.replace(width=SIZE, height=SIZE)
IMG2IMG = Img2Img(
    **{
        name: getattr(BASE, name)
        for name in ("prompt", "negative_prompt", "steps", "cfg_scale", "sampler_name")
    },
    seed=7,
    width=SIZE,
    height=SIZE,
    init_images=(Image.new("RGB", (SIZE, SIZE), (200, 80, 40)),),
    denoising_strength=0.7,
)


@pytest.fixture(scope="module")
def models(
    tmp_path_factory: pytest.TempPathFactory, tiny_sd1: TinyCheckpoint, tiny_sdxl: TinyCheckpoint
) -> Path:
    """models/ with the tiny SD1 and SDXL checkpoints and ControlNets for both (original layout), one
    SD1 ControlNet also in the diffusers layout, and an annotator file that must not be listed."""
    root = tmp_path_factory.mktemp("controlnet")
    checkpoints = root / "Stable-diffusion"
    checkpoints.mkdir()
    for checkpoint in (tiny_sd1, tiny_sdxl):
        shutil.copy(checkpoint.path, checkpoints / checkpoint.path.name)
    folder = root / "ControlNet"
    save_tiny_controlnet(folder / "tiny-cn.safetensors", tiny_sd1.pipe, seed=1)
    save_tiny_controlnet(
        folder / "diffusers" / "tiny-cn-diffusers.safetensors", tiny_sd1.pipe, 2, "diffusers"
    )
    save_tiny_controlnet(folder / "tiny-cn-xl.safetensors", tiny_sdxl.pipe, seed=3)
    (folder / "annotators" / "hed").mkdir(parents=True)
    (folder / "annotators" / "hed" / "ControlNetHED.pth").write_bytes(b"not a ControlNet")
    return root


@pytest.fixture(scope="module")
def manager(models: Path) -> ModelManager:
    hashes = HashCache(models / "cache.json")
    library = ControlNetLibrary(models / "ControlNet", [models / "ControlNet" / "annotators"])
    registry = CheckpointRegistry(models / "Stable-diffusion", hashes)
    return ModelManager(registry, CPU, device_slots=1, keep_in_cpu=True, controlnets=library)


def run(manager: ModelManager, params: GenerationParams) -> Result:
    return generate.run(
        params.replace(sd_model_checkpoint=params.sd_model_checkpoint or "tiny-sd1"),
        manager,
        Job(None, "txt2img", time.monotonic),
    )


def pixels(result: Result) -> np.ndarray:
    return np.asarray(result.images[0]).astype(int)


def test_original_and_diffusers_layouts_load_the_weights_they_were_made_from(
    manager: ModelManager, models: Path, tiny_sd1: TinyCheckpoint
) -> None:
    loaded = manager.get("tiny-sd1")
    library = manager.controlnets
    for name, seed in (("tiny-cn", 1), ("tiny-cn-diffusers", 2)):
        model = library.load(library.find(name), loaded, CPU.device, CPU.dtype)
        expected = tiny_controlnet(tiny_sd1.pipe, seed).state_dict()
        assert model.state_dict().keys() == expected.keys()
        assert all(torch.equal(model.state_dict()[key], value) for key, value in expected.items())
    original = load_file(models / "ControlNet" / "tiny-cn.safetensors")
    # lllyasviel's names: hint convs at even indices (SiLUs between), zero convs, the middle block's out
    hint = sorted(int(k.split(".")[2]) for k in original if k.startswith("control_model.input_hint_block."))
    assert (
        hint[::2] == [0, 0, 2, 2, 4, 4, 6, 6][::2] and "control_model.middle_block_out.0.weight" in original
    )
    assert (
        "control_model.zero_convs.0.0.weight" in original
        and "control_model.input_blocks.0.0.weight" in original
    )


def test_files_that_are_no_controlnet_are_refused_with_their_name(tmp_path: Path) -> None:
    save_file(
        {"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(1)}, str(tmp_path / "ckpt.safetensors")
    )
    with pytest.raises(ModelLoadError, match="ckpt.safetensors: not a ControlNet: it has neither"):
        layout.read_controlnet(tmp_path / "ckpt.safetensors")
    odd = {"controlnet_cond_embedding.conv_in.weight": torch.zeros(1), "unknown.weight": torch.zeros(1)}
    save_file(odd, str(tmp_path / "odd.safetensors"))
    with pytest.raises(ModelLoadError, match="odd.safetensors: not a ControlNet in the diffusers layout"):
        layout.read_controlnet(tmp_path / "odd.safetensors")


def test_library_lists_and_finds_models_as_sd_webui_controlnet_names_them(manager: ModelManager) -> None:
    library = manager.controlnets
    names = [entry.name for entry in library.entries]
    assert names == [
        "diffusers/tiny-cn-diffusers.safetensors",
        "tiny-cn-xl.safetensors",
        "tiny-cn.safetensors",
    ]
    entry = library.find("tiny-cn")
    title = entry.title()
    assert title == f"tiny-cn [{legacy_hash(entry.path)}]" and len(title.split("[")[1]) == 9
    assert library.find(title) == library.find("TINY-CN") == library.find(legacy_hash(entry.path)) == entry
    with pytest.raises(ModelNotFound, match="'canny-v11' not found. Available: diffusers/tiny-cn-diffusers"):
        library.find("canny-v11")


def test_loaded_models_are_cached_until_the_file_changes(manager: ModelManager) -> None:
    loaded, library = manager.get("tiny-sd1"), manager.controlnets
    entry = library.find("tiny-cn")
    first = library.load(entry, loaded, CPU.device, CPU.dtype)
    assert library.load(entry, loaded, CPU.device, CPU.dtype) is first
    stat = entry.path.stat()
    os.utime(entry.path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert library.load(entry, loaded, CPU.device, CPU.dtype) is not first


def test_a_controlnet_for_another_family_is_a_clear_error(manager: ModelManager) -> None:
    with pytest.raises(
        ModelLoadError,
        match=r"tiny-cn\.safetensors is an SD1/SD2-style .* ControlNet; "
        r"the checkpoint tiny-sdxl\.safetensors is SDXL",
    ):
        run(manager, BASE.replace(sd_model_checkpoint="tiny-sdxl", control_units=(canny(),)))
    with pytest.raises(ModelLoadError, match="is an SDXL ControlNet; the checkpoint tiny-sd1.safetensors"):
        run(manager, BASE.replace(control_units=(canny(model="tiny-cn-xl"),)))


def test_hook_gives_what_diffusers_controlnet_pipeline_gives(manager: ModelManager) -> None:
    """The UNet hook reproduces diffusers' ControlNet step (scale, guidance start/end) exactly."""
    loaded = manager.get("tiny-sd1")
    unit = canny(weight=0.8, guidance_start=0.25, guidance_end=0.75)
    plan = controlnet.prepare([unit], manager.controlnets, loaded, CPU.device, CPU.dtype, (SMALL, SMALL))
    assert plan is not None
    pipe = loaded.pipe

    def denoise(p: Any, **extra: Any) -> torch.Tensor:
        latents = torch.randn((1, 4, SMALL // 2, SMALL // 2), generator=torch.Generator().manual_seed(1))
        common = {"num_inference_steps": 4, "guidance_scale": 5.0, "width": SMALL, "height": SMALL}
        return p(
            prompt="a cat", negative_prompt="x", latents=latents, output_type="latent", **common, **extra
        ).images

    with ModelHooks([plan.hook(pipe, 1)]).installed(pipe.unet):
        hooked = denoise(pipe)
    reference = StableDiffusionControlNetPipeline(**pipe.components, controlnet=plan.models[0])
    reference.set_progress_bar_config(disable=True)
    expected = denoise(
        reference,
        image=plan.maps[0],
        controlnet_conditioning_scale=0.8,
        control_guidance_start=0.25,
        control_guidance_end=0.75,
    )
    assert torch.equal(hooked, expected)
    assert not torch.equal(hooked, denoise(pipe))


def residuals_seen(
    manager: ModelManager, units: list[ControlUnit], steps: int = 4
) -> list[list[torch.Tensor] | None]:
    """What the UNet got from the ControlNet hook, call by call (None: nothing)."""
    loaded = manager.get("tiny-sd1")
    plan = controlnet.prepare(units, manager.controlnets, loaded, CPU.device, CPU.dtype, (SMALL, SMALL))
    seen: list[list[torch.Tensor] | None] = []

    def record(module: Any, args: Any, kwargs: dict[str, Any]) -> None:
        down = kwargs.get("down_block_additional_residuals")
        seen.append(None if down is None else [*down, kwargs["mid_block_additional_residual"]])

    latents = torch.randn((1, 4, SMALL // 2, SMALL // 2), generator=torch.Generator().manual_seed(1))
    loaded.pipe.scheduler = EulerDiscreteScheduler.from_config(loaded.pipe.scheduler.config)  # a call a step
    with ModelHooks([plan.hook(loaded.pipe, 1)]).installed(loaded.pipe.unet):  # type: ignore[union-attr]
        handle = loaded.pipe.unet.register_forward_pre_hook(record, with_kwargs=True)
        try:
            loaded.pipe(
                prompt="a",
                negative_prompt="b",
                num_inference_steps=steps,
                guidance_scale=5.0,
                latents=latents,
                width=SMALL,
                height=SMALL,
                output_type="latent",
            )
        finally:
            handle.remove()
    return seen


def test_control_modes_scale_and_mask_the_residuals(manager: ModelManager) -> None:
    balanced, prompt, control = (
        residuals_seen(manager, [canny(control_mode=mode)], steps=1)[0] for mode in CONTROL_MODES
    )
    assert balanced is not None and prompt is not None and control is not None
    last = len(balanced) - 1
    for index, (b, p, c) in enumerate(zip(balanced, prompt, control)):
        scale = 0.825 ** (last - index)  # soft injection, deepest residual (the middle block's) unscaled
        torch.testing.assert_close(p, b * scale)
        assert torch.count_nonzero(c[:1]) == 0  # cfg injection: nothing on the unconditional half
        torch.testing.assert_close(c[1:], b[1:] * scale)


def test_guidance_range_and_weight_zero_leave_the_unet_alone(manager: ModelManager) -> None:
    seen = residuals_seen(manager, [canny(guidance_start=0.5)], steps=4)
    assert [s is None for s in seen] == [True, True, False, False]
    seen = residuals_seen(manager, [canny(guidance_end=0.5), canny(weight=0.0)], steps=4)
    assert [s is None for s in seen] == [False, False, True, True]


def test_txt2img_follows_the_control_and_weight_zero_is_identical(manager: ModelManager) -> None:
    plain = run(manager, BASE)
    controlled = run(manager, BASE.replace(control_units=(canny(),)))
    zero = run(manager, BASE.replace(control_units=(canny(weight=0.0),)))
    assert np.abs(pixels(controlled) - pixels(plain)).max() > 10
    assert np.array_equal(pixels(zero), pixels(plain))
    fields = infotext.parse(controlled.infotexts[0])
    title = manager.controlnets.find("tiny-cn").title()
    assert fields["ControlNet 0"] == (
        f"Module: canny, Model: {title}, Weight: 1.0, Resize Mode: Crop and Resize, Processor Res: 64, "
        "Threshold A: 100.0, Threshold B: 200.0, Guidance Start: 0.0, Guidance End: 1.0, "
        "Pixel Perfect: False, Control Mode: Balanced"
    )
    assert infotext.to_params(fields).control_units == (
        canny(image=None, model=title, threshold_a=100.0, threshold_b=200.0),
    )
    assert "ControlNet" not in plain.infotexts[0]


def test_several_units_add_up_and_are_numbered_by_place(manager: ModelManager) -> None:
    first = canny()
    second = canny(model="tiny-cn-diffusers", module="invert", control_mode="ControlNet is more important")
    one = run(manager, BASE.replace(control_units=(first,)))
    both = run(manager, BASE.replace(control_units=(first, ControlUnit(enabled=False), second)))
    assert not np.array_equal(pixels(one), pixels(both))
    fields = infotext.parse(both.infotexts[0])
    assert "ControlNet 1" not in fields
    assert fields["ControlNet 2"].startswith("Module: invert, Model: tiny-cn-diffusers [")
    assert "Processor Res" not in fields["ControlNet 2"]  # invert has no resolution slider


def test_composable_prompts_get_the_control_on_every_part(manager: ModelManager) -> None:
    composable = BASE.replace(prompt="a cat AND a dog :0.7")
    plain = run(manager, composable)
    controlled = run(
        manager, composable.replace(control_units=(canny(control_mode="ControlNet is more important"),))
    )
    assert np.abs(pixels(controlled) - pixels(plain)).max() > 10


def test_img2img_uses_its_input_as_control_image_and_weight_zero_is_identical(manager: ModelManager) -> None:
    from_input = canny(image=None, use_img2img_input=True, module="none")
    plain = run(manager, IMG2IMG)
    controlled = run(manager, IMG2IMG.replace(control_units=(from_input,)))
    own_image = run(manager, IMG2IMG.replace(control_units=(canny(),)))
    zero = run(manager, IMG2IMG.replace(control_units=(canny(weight=0.0),)))
    assert np.abs(pixels(controlled) - pixels(plain)).max() > 10
    assert not np.array_equal(pixels(controlled), pixels(own_image))
    assert np.array_equal(pixels(zero), pixels(plain))


def test_inpaint_is_controlled_inside_the_mask_only(manager: ModelManager) -> None:
    mask = Image.new("L", (SIZE, SIZE), 0)
    ImageDraw.Draw(mask).rectangle((0, 0, SIZE // 2 - 1, SIZE - 1), fill=255)  # repaint the left half
    inpaint = IMG2IMG.replace(mask=mask, mask_blur=0, inpainting_fill=1)
    plain = run(manager, inpaint)
    controlled = run(manager, inpaint.replace(control_units=(canny(),)))
    zero = run(manager, inpaint.replace(control_units=(canny(weight=0.0),)))
    difference = np.abs(pixels(controlled) - pixels(plain)).max(axis=2)
    assert difference[:, : SIZE // 2 - 8].max() > 10
    assert difference[:, SIZE // 2 + 8 :].max() <= 2  # kept: the input pasted back
    assert np.array_equal(pixels(zero), pixels(plain))


def test_only_masked_inpaint_cuts_the_control_image_to_its_region(manager: ModelManager) -> None:
    loaded, library = manager.get("tiny-sd1"), manager.controlnets
    image = disc().resize((128, 128))
    region = (32, 16, 96, 80)
    plan = controlnet.prepare(
        [canny(image=image)], library, loaded, CPU.device, CPU.dtype, (SIZE, SIZE), image, region
    )
    expected, _ = preprocessors.control_map(canny(), image.crop(region), (SIZE, SIZE), library.annotators)
    assert plan is not None and np.array_equal(np.asarray(plan.maps[0]), np.asarray(expected))
    # a control image of another size is first fitted over the input (here: stretched to 128x128)
    plan = controlnet.prepare(
        [canny(resize_mode="Just Resize")],
        library,
        loaded,
        CPU.device,
        CPU.dtype,
        (SIZE, SIZE),
        image,
        region,
    )
    stretched = Image.fromarray(image_fit.fit(np.asarray(disc()), image.size, "Just Resize"))
    expected, _ = preprocessors.control_map(canny(), stretched.crop(region), (SIZE, SIZE), library.annotators)
    assert plan is not None and np.array_equal(np.asarray(plan.maps[0]), np.asarray(expected))
    mask = Image.new("L", (128, 128), 0)
    ImageDraw.Draw(mask).rectangle((40, 40, 80, 80), fill=255)
    params = IMG2IMG.replace(init_images=(image,), mask=mask, inpaint_full_res=True, control_units=(canny(),))
    assert "ControlNet 0" in infotext.parse(run(manager, params).infotexts[0])


def test_sdxl_controlnet_runs_with_an_sdxl_checkpoint(manager: ModelManager) -> None:
    params = BASE.replace(sd_model_checkpoint="tiny-sdxl", steps=2)
    plain = run(manager, params)
    controlled = run(manager, params.replace(control_units=(canny(model="tiny-cn-xl"),)))
    assert np.abs(pixels(controlled) - pixels(plain)).max() > 10


def test_variation_seeds_reach_controlled_runs(manager: ModelManager) -> None:
    """The ControlNet path draws the batch's noise too (engine.sampling.noise): variation strength 1 is
    the subseed's image, in txt2img and img2img alike."""
    for base in (BASE, IMG2IMG):
        controlled = base.replace(control_units=(canny(use_img2img_input=base is IMG2IMG),))
        of_subseed = run(manager, controlled.replace(seed=99))
        full = run(manager, controlled.replace(subseed=99, subseed_strength=1.0))
        assert np.array_equal(pixels(full), pixels(of_subseed))
        assert not np.array_equal(pixels(full), pixels(run(manager, controlled)))
