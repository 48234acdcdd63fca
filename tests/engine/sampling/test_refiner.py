"""The refiner (engine.sampling.refiner) and the hires checkpoint through engine.generate.run on tiny
checkpoints: where the switch happens, that the schedule runs on across it, the infotext and its paste,
SDXL base → tiny SDXL refiner, the models staying cached, and the second pass on another checkpoint."""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from tools.tiny_models import TinyCheckpoint, build_tiny_checkpoint
from webui.core import infotext
from webui.core.errors import InvalidParameter
from webui.core.params import Img2Img, Txt2Img
from webui.engine.checkpoints.manager import ModelManager
from webui.engine.sampling import generate
from webui.services.job import Job
from webui.ui import paste

pytestmark = pytest.mark.usefixtures("one_torch_thread")

BASE = Txt2Img(
    prompt="a red cube",
    negative_prompt="blurry",
    steps=5,
    cfg_scale=5.0,
    sampler_name="DPM++ 2M",  # multistep: its history must run on across the switch
    seed=11,
    width=64,
    height=64,
    sd_model_checkpoint="main",
)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory, tiny_sd1_fast: TinyCheckpoint) -> dict[str, Path]:
    """main: the tiny SD1; twin: the same weights in another file; other: other weights; xl / xl-refiner:
    a tiny SDXL base and a tiny SDXL refiner in the real LDM layout."""
    folder = tmp_path_factory.mktemp("refiner-models")
    files = {"main": folder / "main.safetensors", "twin": folder / "twin.safetensors"}
    shutil.copy(tiny_sd1_fast.path, files["main"])
    shutil.copy(tiny_sd1_fast.path, files["twin"])
    other = build_tiny_checkpoint(
        folder / "other.safetensors", "sd1", seed=7, full_resolution_attention=False
    )
    files["other"] = other.path
    files["xl"] = build_tiny_checkpoint(folder / "xl.safetensors", "sdxl").path
    files["xl-refiner"] = build_tiny_checkpoint(
        folder / "xl-refiner.safetensors", "sdxl-refiner", seed=3
    ).path
    return files


@pytest.fixture(scope="module")
def manager(
    tmp_path_factory: pytest.TempPathFactory,
    models: dict[str, Path],
    make_manager: Callable[..., ModelManager],
) -> ModelManager:
    checkpoints = [TinyCheckpoint(path, None) for path in models.values()]  # type: ignore[arg-type]
    # room for the three models a hires + refiner run holds (1 device slot + keep in CPU + 1 RAM slot)
    return make_manager(tmp_path_factory.mktemp("refiner"), *checkpoints, ram_cache=1)


def job() -> Job:
    return Job(params=None, kind="txt2img", clock=time.monotonic)


def pixels(result: generate.Result) -> np.ndarray:
    return np.asarray(result.images[0].convert("RGB"), dtype=np.int16)


@contextmanager
def counted_passes(manager: ModelManager, *names: str) -> Iterator[dict[str, int]]:
    """How many times each named checkpoint's UNet really runs while the block runs (its first layer:
    the call into the checkpoint's UNet module happens every step, routed or not)."""
    counts = dict.fromkeys(names, 0)
    handles = []
    for name in names:

        def count(module: object, args: object, name: str = name) -> None:
            counts[name] += 1

        handles.append(manager.get(name).pipe.unet.conv_in.register_forward_pre_hook(count))
    try:
        yield counts
    finally:
        for handle in handles:
            handle.remove()


def test_switch_at_1_is_no_refiner_and_writes_no_refiner_keys(manager: ModelManager) -> None:
    plain = generate.run(BASE, manager, job())
    never = generate.run(BASE.replace(refiner_checkpoint="other", refiner_switch_at=1.0), manager, job())
    assert np.array_equal(pixels(plain), pixels(never))
    assert "Refiner" not in never.infotexts[0]


@pytest.mark.parametrize("sampler", ["DPM++ 2M", "Euler a"])
def test_a_refiner_with_the_same_weights_continues_one_schedule(manager: ModelManager, sampler: str) -> None:
    """Same weights in another file: any restart of the schedule (fresh noise, lost multistep history,
    another step count) would change the image; a continuous one gives it exactly."""
    params = BASE.replace(sampler_name=sampler)
    plain = generate.run(params, manager, job())
    with counted_passes(manager, "main", "twin") as passes:
        switched = generate.run(
            params.replace(refiner_checkpoint="twin", refiner_switch_at=0.5), manager, job()
        )
    assert passes == {"main": 3, "twin": 2}  # A1111: passes 0-2 have completed < 0.5 of 5 steps
    assert np.array_equal(pixels(plain), pixels(switched))
    assert "Refiner: twin [" in switched.infotexts[0]


def test_the_refiner_denoises_the_steps_after_the_switch(manager: ModelManager) -> None:
    plain = generate.run(BASE, manager, job())
    with counted_passes(manager, "main", "other") as passes:
        refined = generate.run(
            BASE.replace(refiner_checkpoint="other", refiner_switch_at=0.6), manager, job()
        )
    assert passes == {"main": 3, "other": 2}
    alone = generate.run(BASE.replace(sd_model_checkpoint="other"), manager, job())
    assert not np.array_equal(pixels(refined), pixels(plain))
    assert not np.array_equal(pixels(refined), pixels(alone))


def test_the_refiner_infotext_pastes_back_to_the_same_params_and_image(manager: ModelManager) -> None:
    params = BASE.replace(refiner_checkpoint="other", refiner_switch_at=0.6)
    first = generate.run(params, manager, job())
    text = first.infotexts[0]
    short_hash = manager.short_hash(manager.get("other"))
    assert f"Refiner: other [{short_hash}], Refiner switch at: 0.6" in text
    pasted = paste.read(text, params_type=Txt2Img)
    assert pasted.values["refiner_checkpoint"] == f"other [{short_hash}]"
    assert pasted.values["refiner_switch_at"] == 0.6
    again = generate.run(BASE.replace(**pasted.values), manager, job())
    assert np.array_equal(pixels(first), pixels(again))
    assert again.infotexts[0] == text
    # A1111's parser reads the same keys back
    fields = infotext.parse(text)
    assert (fields["Refiner"], fields["Refiner switch at"]) == (f"other [{short_hash}]", "0.6")


def test_img2img_switches_within_the_steps_that_run(manager: ModelManager) -> None:
    from PIL import Image

    params = Img2Img.from_txt2img(
        BASE, init_images=(Image.new("RGB", (64, 64), "red"),), denoising_strength=0.6, steps=10
    )
    with counted_passes(manager, "main", "other") as passes:
        generate.run(params.replace(refiner_checkpoint="other", refiner_switch_at=0.5), manager, job())
    assert passes == {"main": 3, "other": 3}  # 6 steps run (10 × 0.6): half on each


def test_an_unknown_refiner_is_refused_naming_it(manager: ModelManager) -> None:
    with pytest.raises(InvalidParameter, match="Refiner checkpoint 'no-such-model' not found"):
        generate.run(BASE.replace(refiner_checkpoint="no-such-model"), manager, job())


def test_base_and_refiner_stay_cached_across_runs_and_batches(
    manager: ModelManager, caplog: pytest.LogCaptureFixture
) -> None:
    params = BASE.replace(refiner_checkpoint="other", refiner_switch_at=0.6, n_iter=2)
    generate.run(params, manager, job())  # both loaded (if not yet)
    with caplog.at_level(logging.INFO, logger="webui.engine.checkpoints.manager"):
        generate.run(params, manager, job())
        generate.run(params, manager, job())
    assert manager.current is not None and manager.current.path.stem == "main"  # not the refiner
    assert [r.message for r in caplog.records if r.message.startswith("Loading checkpoint")] == []


def test_sdxl_base_with_the_tiny_sdxl_refiner(manager: ModelManager) -> None:
    refiner = manager.get("xl-refiner")
    assert refiner.architecture.refiner and refiner.pipe.config.requires_aesthetics_score
    assert (
        refiner.pipe.text_encoder is None
        and type(refiner.pipe).__name__ == "StableDiffusionXLImg2ImgPipeline"
    )
    params = BASE.replace(sd_model_checkpoint="xl", sampler_name="Euler")
    plain = generate.run(params, manager, job())
    with counted_passes(manager, "xl", "xl-refiner") as passes:
        refined = generate.run(params.replace(refiner_checkpoint="xl-refiner"), manager, job())
    assert passes == {"xl": 4, "xl-refiner": 1}  # A1111's default switch at 0.8 of 5 steps
    assert not np.array_equal(pixels(plain), pixels(refined))
    assert (
        "Refiner: xl-refiner [" in refined.infotexts[0] and "Refiner switch at: 0.8" in refined.infotexts[0]
    )


def test_txt2img_on_a_refiner_checkpoint_is_refused(manager: ModelManager) -> None:
    with pytest.raises(InvalidParameter, match="refiner"):
        generate.run(BASE.replace(sd_model_checkpoint="xl-refiner"), manager, job())
    manager.get("main")


HIRES = BASE.replace(enable_hr=True, hr_scale=2.0, denoising_strength=0.5, hr_second_pass_steps=2, steps=3)


def test_the_hires_checkpoint_runs_the_second_pass(manager: ModelManager) -> None:
    same = generate.run(HIRES, manager, job())
    twin = generate.run(HIRES.replace(hr_checkpoint_name="twin"), manager, job())
    assert np.array_equal(pixels(same), pixels(twin))  # same weights, another file: the same image
    with counted_passes(manager, "main", "other") as passes:
        other = generate.run(HIRES.replace(hr_checkpoint_name="other"), manager, job())
    assert manager.current is not None and manager.current.path.stem == "main"  # current again after the run
    assert passes == {"main": 3, "other": 2}
    assert other.images[0].size == (128, 128) and not np.array_equal(pixels(same), pixels(other))
    short_hash = manager.short_hash(manager.get("other"))
    assert f"Hires checkpoint: other [{short_hash}]" in other.infotexts[0]
    assert paste.read(other.infotexts[0], params_type=Txt2Img).values["hr_checkpoint_name"] == (
        f"other [{short_hash}]"
    )


def test_with_hires_fix_the_refiner_switches_in_the_second_pass_only(manager: ModelManager) -> None:
    with counted_passes(manager, "main", "other") as passes:
        result = generate.run(
            HIRES.replace(refiner_checkpoint="other", refiner_switch_at=0.5), manager, job()
        )
    assert passes == {"main": 3 + 1, "other": 1}  # first pass all main; second pass 2 steps, half each
    assert "Refiner: other [" in result.infotexts[0]


def test_an_unknown_hires_checkpoint_is_refused_naming_it(manager: ModelManager) -> None:
    with pytest.raises(InvalidParameter, match="Hires checkpoint 'nowhere' not found"):
        generate.run(HIRES.replace(hr_checkpoint_name="nowhere"), manager, job())


def test_unet_forward_is_restored_after_a_run(manager: ModelManager) -> None:
    generate.run(BASE.replace(refiner_checkpoint="other", refiner_switch_at=0.2), manager, job())
    assert "forward" not in manager.get("main").pipe.unet.__dict__
