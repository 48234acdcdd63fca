"""LoRA through engine.generate.run on the tiny SD1 checkpoint, with LoRA files written in kohya's format."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from tools.tiny_models import UNET_TARGETS, TinyCheckpoint, kohya_lora
from webui.core.errors import InvalidParameter
from webui.core.hashing import HashCache, addnet_hash_safetensors
from webui.core.params import Txt2Img
from webui.core.prompts import NetworkTag
from webui.core.requests import Result
from webui.engine.checkpoints import loader
from webui.engine.checkpoints.manager import ModelManager
from webui.engine.devices import DeviceChoice
from webui.engine.networks.lora import LoraLibrary, map_ldm_unet_keys
from webui.engine.sampling import generate
from webui.services.job import Job

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CPU = DeviceChoice(torch.device("cpu"), torch.float32)
BASE = Txt2Img(
    prompt="a red cube", negative_prompt="blurry", steps=2, cfg_scale=5.0, seed=77, width=64, height=64
)


@pytest.fixture(scope="module")
def lora_dir(tmp_path_factory: pytest.TempPathFactory, tiny_sd1: TinyCheckpoint) -> Path:
    folder = tmp_path_factory.mktemp("Lora")
    pipe = tiny_sd1.pipe
    save_file(kohya_lora(pipe, 1), folder / "style.safetensors")
    (folder / "sub").mkdir()
    save_file(kohya_lora(pipe, 1, ldm_names=True), folder / "sub" / "style_ldm.safetensors")
    save_file(kohya_lora(pipe, 2), folder / "other.safetensors")
    save_file(kohya_lora(pipe, 3, unet=False), folder / "te_only.safetensors")
    torch.save(kohya_lora(pipe, 1), folder / "style_pt.pt")
    sdxl = {k.replace("lora_te_", "lora_te2_"): v for k, v in kohya_lora(pipe, 4, unet=False).items()}
    save_file({**kohya_lora(pipe, 4, te=False), **sdxl}, folder / "for_sdxl.safetensors")
    bigger = {
        k: torch.cat([v, v], dim=-1) if k.endswith("lora_down.weight") else v
        for k, v in kohya_lora(pipe, 5, te=False).items()
    }
    save_file(bigger, folder / "wrong_shapes.safetensors")
    unknown = {k.replace("attn1_to_q", "attn9_to_q"): v for k, v in kohya_lora(pipe, 6, te=False).items()}
    save_file(unknown, folder / "unknown_keys.safetensors")
    return folder


@pytest.fixture(scope="module")
def loras(lora_dir: Path) -> LoraLibrary:
    return LoraLibrary(lora_dir, HashCache(lora_dir.parent / "lora-cache.json"))


def run(manager: ModelManager, loras: LoraLibrary, prompt: str, **changes: object) -> Result:
    job = Job(params=None, kind="txt2img", clock=time.monotonic)
    manager.loras = loras
    return generate.run(BASE.replace(prompt=prompt, **changes), manager, job)


def pixels(result: Result) -> np.ndarray:
    image: Image.Image = result.images[0]
    return np.asarray(image, dtype=np.int16)


@pytest.fixture(scope="module")
def plain(manager: ModelManager, loras: LoraLibrary) -> np.ndarray:
    """The image before any LoRA was ever loaded on the pipeline."""
    return pixels(run(manager, loras, "a red cube"))


def test_library_finds_files_recursively_by_stem(loras: LoraLibrary) -> None:
    assert loras.names() == sorted(loras.names(), key=str.lower)
    assert {"style", "style_ldm", "style_pt", "other", "te_only"} <= set(loras.names())
    with pytest.raises(InvalidParameter, match=r"'nope'.*available: .*style"):
        loras.find("nope")


def test_a_lora_changes_the_image_and_removing_it_restores_every_pixel(
    manager: ModelManager, loras: LoraLibrary, plain: np.ndarray
) -> None:
    with_lora = pixels(run(manager, loras, "a red cube <lora:style:1>"))
    assert np.abs(with_lora - plain).max() > 10
    assert np.array_equal(pixels(run(manager, loras, "a red cube")), plain)


def test_weight_zero_equals_no_lora(manager: ModelManager, loras: LoraLibrary, plain: np.ndarray) -> None:
    assert np.array_equal(pixels(run(manager, loras, "a red cube <lora:style:0>")), plain)


def test_two_loras_combine(manager: ModelManager, loras: LoraLibrary, plain: np.ndarray) -> None:
    one = pixels(run(manager, loras, "a red cube <lora:style:0.7>"))
    two = pixels(run(manager, loras, "a red cube <lora:other:0.7>"))
    both = pixels(run(manager, loras, "a red cube <lora:style:0.7> <lora:other:0.7>"))
    assert not np.array_equal(both, one) and not np.array_equal(both, two) and not np.array_equal(both, plain)


def test_unet_output_is_exactly_the_base_after_loras_are_switched_off(
    tiny_sd1: TinyCheckpoint, lora_dir: Path, tmp_path: Path
) -> None:
    pipe = loader.load_checkpoint(tiny_sd1.path, CPU.device, CPU.dtype).pipe
    library = LoraLibrary(lora_dir, HashCache(tmp_path / "cache.json"))
    sample = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    context = torch.randn(1, 77, 32, generator=torch.Generator().manual_seed(1))

    def unet() -> torch.Tensor:
        with torch.no_grad():
            return pipe.unet(sample, torch.tensor([500]), context).sample

    before = unet()
    library.apply(pipe, library.resolve([NetworkTag("lora", "style", ("1",))]))
    changed = unet()
    library.apply(pipe, [])
    assert not torch.equal(changed, before)
    assert torch.equal(unet(), before)
    # the LDM-named copy of the same LoRA maps onto the same layers
    library.apply(pipe, library.resolve([NetworkTag("lora", "style_ldm", ("1",))]))
    assert torch.allclose(unet(), changed, atol=1e-5)


def test_text_encoder_and_unet_weights_are_separate(
    manager: ModelManager, loras: LoraLibrary, plain: np.ndarray
) -> None:
    both = pixels(run(manager, loras, "a red cube <lora:style:1>"))
    unet_only = pixels(run(manager, loras, "a red cube <lora:style:0:1>"))
    te_only = pixels(run(manager, loras, "a red cube <lora:style:te=1:unet=0>"))
    assert len({arr.tobytes() for arr in (both, unet_only, te_only, plain)}) == 4
    # a text-encoder-only LoRA acts through the text encoder alone: its UNet weight changes nothing
    te_lora = pixels(run(manager, loras, "a red cube <lora:te_only:1:0>"))
    assert not np.array_equal(te_lora, plain)
    assert np.array_equal(pixels(run(manager, loras, "a red cube <lora:te_only:1:1>")), te_lora)
    assert np.array_equal(pixels(run(manager, loras, "a red cube <lora:te_only:0:1>")), plain)


def test_pt_files_and_ldm_block_names_load(manager: ModelManager, loras: LoraLibrary) -> None:
    reference = pixels(run(manager, loras, "a red cube <lora:style:1>"))
    for name in ("style_pt", "style_ldm"):
        result = run(manager, loras, f"a red cube <lora:{name}:1>")
        assert np.abs(pixels(result) - reference).max() <= 1, name


def test_infotext_keeps_tags_and_carries_lora_hashes(
    manager: ModelManager, loras: LoraLibrary, lora_dir: Path
) -> None:
    result = run(manager, loras, "a red cube <lora:style:0.8> <lora:other:0.5>")
    style, other = (addnet_hash_safetensors(lora_dir / f"{n}.safetensors")[:12] for n in ("style", "other"))
    text = result.infotexts[0]
    assert text.startswith("a red cube <lora:style:0.8> <lora:other:0.5>\n")
    assert f'Lora hashes: "style: {style}, other: {other}"' in text
    assert "Lora hashes" not in run(manager, loras, "a red cube").infotexts[0]


@pytest.mark.parametrize(
    ("name", "reason"),
    [("for_sdxl", "SDXL"), ("wrong_shapes", "does not fit"), ("unknown_keys", "another model architecture")],
)
def test_a_lora_that_does_not_fit_warns_and_generation_goes_on(
    manager: ModelManager,
    loras: LoraLibrary,
    plain: np.ndarray,
    name: str,
    reason: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    result = run(manager, loras, f"a red cube <lora:{name}:1>")
    assert np.array_equal(pixels(result), plain)
    assert "Lora hashes" not in result.infotexts[0]
    assert len(result.warnings) == 1 and name in result.warnings[0]  # the UI and API show it
    assert any(name in message and reason in message for message in caplog.messages)
    applied = loras.apply(manager.get().pipe, loras.resolve([NetworkTag("lora", name, ("1",))]))
    assert applied.loras == () and len(applied.warnings) == 1 and reason in applied.warnings[0]
    # a fitting LoRA beside it still applies
    beside = run(manager, loras, f"a red cube <lora:{name}:1> <lora:style:1>")
    assert np.array_equal(pixels(beside), pixels(run(manager, loras, "a red cube <lora:style:1>")))


def test_unknown_lora_name_fails_before_generating(manager: ModelManager, loras: LoraLibrary) -> None:
    with pytest.raises(InvalidParameter, match=r"'missing'.*available:.*other"):
        run(manager, loras, "a red cube <lora:missing:1>")


def test_other_extra_networks_are_refused(manager: ModelManager, loras: LoraLibrary) -> None:
    with pytest.raises(InvalidParameter, match="<hypernet:x>"):
        run(manager, loras, "a red cube <hypernet:x:1>")


def test_changing_loras_never_reloads_the_checkpoint(
    manager: ModelManager, loras: LoraLibrary, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Path] = []
    real = loader.load_checkpoint

    def spy(*args: object, **kwargs: object) -> object:
        calls.append(Path(str(args[0])))
        return real(*args, **kwargs)

    monkeypatch.setattr("webui.engine.checkpoints.manager.load_checkpoint", spy)
    for prompt in ("a <lora:style:1>", "a <lora:other:1>", "a <lora:style:1><lora:other:0.3>", "a"):
        run(manager, loras, prompt)
    assert calls == []


def test_ldm_key_mapping_follows_the_unet_layout(tiny_sd1: TinyCheckpoint) -> None:
    config = tiny_sd1.pipe.unet.config
    state = {f"lora_unet_{ldm}.lora_down.weight": torch.zeros(1) for ldm in UNET_TARGETS.values()}
    mapped = map_ldm_unet_keys(state, config)
    assert sorted(mapped) == sorted(f"lora_unet_{d.replace('.', '_')}.lora_down.weight" for d in UNET_TARGETS)
    with pytest.raises(ValueError, match="input_blocks.9.1"):
        map_ldm_unet_keys({"lora_unet_input_blocks_9_1_proj_in.alpha": torch.zeros(1)}, config)


def test_refresh_sees_new_files(loras: LoraLibrary, lora_dir: Path) -> None:
    extra = lora_dir / "added_later.safetensors"
    shutil.copy(lora_dir / "other.safetensors", extra)
    try:
        assert "added_later" not in loras.names()
        loras.refresh()
        assert "added_later" in loras.names()
    finally:
        extra.unlink()
        loras.refresh()
