"""Model upscalers through spandrel, on random-weight files in the key layouts published models use."""

from __future__ import annotations

import dataclasses
import pickle
import re
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from webui.core.errors import Interrupted, InvalidParameter, ModelLoadError, ModelNotFound
from webui.engine.upscaling.catalog import UpscalerCatalog
from webui.engine.upscaling.loading import load_model
from webui.engine.upscaling.runner import TileSettings, planned_passes, upscale_image
from webui.engine.upscaling.spandrel_import import load_spandrel
from webui.engine.upscaling.tiling import run_tiled, tile_spans
from webui.services.upscalers import ExtrasResize, ModelUpscaling, list_upscalers, run_extras

ROOT = Path(__file__).resolve().parents[3]


def _random(module: torch.nn.Module, seed: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.normal_(0, 0.1)
    return {key: value.detach().clone().contiguous() for key, value in module.state_dict().items()}


def _esrgan_old(scale: int) -> dict[str, torch.Tensor]:
    """The original ESRGAN repo's 'old' layout (`model.0.weight`, `model.1.sub.0.RDB1.conv1.0.weight`, …)."""
    load_spandrel()
    from spandrel.architectures.ESRGAN import ESRGAN

    return _random(ESRGAN(num_filters=8, num_blocks=1, scale=scale), seed=1)


def _esrgan_new(old: dict[str, torch.Tensor], basicsr: bool) -> dict[str, torch.Tensor]:
    """The same weights in the 'new' layouts: ESRGAN repo's RRDB_ESRGAN_x4.pth (`conv_first`,
    `RRDB_trunk`, `trunk_conv`, `upconv1`, `HRconv`) or BasicSR's / Real-ESRGAN's (`body.0.rdb1`,
    `conv_body`, `conv_up1`)."""
    last = max(int(key.split(".")[1]) for key in old)
    names = {0: "conv_first", last - 2: "conv_hr" if basicsr else "HRconv", last: "conv_last"}
    new: dict[str, torch.Tensor] = {}
    for key, value in old.items():
        index, rest = int(key.split(".")[1]), key.split(".", 2)[2]
        block = re.fullmatch(r"sub\.(\d+)\.RDB(\d)\.conv(\d)\.0\.(weight|bias)", rest)
        if block:
            n, rdb, conv, kind = block.groups()
            name = f"body.{n}.rdb{rdb}.conv{conv}" if basicsr else f"RRDB_trunk.{n}.RDB{rdb}.conv{conv}"
            new[f"{name}.{kind}"] = value
        elif rest.startswith("sub."):  # the trunk's closing conv
            new[f"{'conv_body' if basicsr else 'trunk_conv'}.{rest.split('.')[-1]}"] = value
        elif index in names:
            new[f"{names[index]}.{rest}"] = value
        else:  # upsampling convs sit at model.3, model.6, …
            new[f"{'conv_up' if basicsr else 'upconv'}{index // 3}.{rest}"] = value
    return new


def _compact(scale: int, seed: int = 2) -> dict[str, torch.Tensor]:
    """Real-ESRGAN's compact SRVGGNet layout (`body.0.weight` … `body.N.weight`), as realesr-general-x4v3."""
    load_spandrel()
    from spandrel.architectures.Compact import Compact

    return _random(Compact(num_feat=8, num_conv=1, upscale=scale), seed=seed)


def _swinir() -> dict[str, torch.Tensor]:
    load_spandrel()
    from spandrel.architectures.SwinIR import SwinIR

    net = SwinIR(
        img_size=16,
        embed_dim=12,
        depths=[1],
        num_heads=[2],
        window_size=4,
        upscale=2,
        upsampler="pixelshuffle",
    )
    return _random(net, seed=3)


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    models = tmp_path_factory.mktemp("models")
    esrgan, realesrgan, swinir = models / "ESRGAN", models / "RealESRGAN", models / "SwinIR"
    for folder in (esrgan, realesrgan, swinir):
        folder.mkdir()
    old = _esrgan_old(4)
    torch.save(old, esrgan / "old_4x.pth")
    torch.save(_esrgan_new(old, basicsr=False), esrgan / "new_4x.pth")
    torch.save({"params_ema": _esrgan_new(_esrgan_old(2), basicsr=True)}, realesrgan / "basicsr_x2.pth")
    save_file(_compact(4), realesrgan / "compact_x4.safetensors")
    torch.save({"params": _swinir()}, swinir / "swinir_x2.pth")
    return [esrgan, realesrgan, swinir, models / "DAT"]


def _image(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = numpy.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=numpy.uint8))


def test_spandrel_imports_without_torchvision() -> None:
    code = (
        "import importlib.util, sys\n"
        "assert importlib.util.find_spec('torchvision') is None, 'torchvision is installed'\n"
        "import webui.engine.upscaling.catalog\n"
        "from webui.engine.upscaling.spandrel_import import load_spandrel\n"
        "spandrel = load_spandrel()\n"
        "assert 'ESRGAN' in [a.architecture.id for a in spandrel.MAIN_REGISTRY.architectures()]\n"
        "assert 'torchvision' not in sys.modules and importlib.util.find_spec('torchvision') is None\n"
        "from spandrel.architectures.RestoreFormer import tv_normalize\n"
        "import torch\n"
        "x = torch.rand(1, 3, 4, 4)\n"
        "assert torch.allclose(tv_normalize(x, [0.5] * 3, [0.25] * 3), (x - 0.5) / 0.25)\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_listing_detects_architecture_and_scale(folders: list[Path]) -> None:
    found = {model.name: (model.architecture, model.scale) for model in UpscalerCatalog(folders).scan()}
    assert found == {
        "old_4x": ("ESRGAN", 4),
        "new_4x": ("ESRGAN", 4),
        "basicsr_x2": ("ESRGAN", 2),
        "compact_x4": ("RealESRGAN Compact", 4),
        "swinir_x2": ("SwinIR", 2),
    }


def test_new_layout_loads_the_same_weights_as_the_old(folders: list[Path]) -> None:
    old = load_model(folders[0] / "old_4x.pth")
    new = load_model(folders[0] / "new_4x.pth")
    image = torch.rand(1, 3, 12, 10)
    with torch.inference_mode():
        assert torch.equal(old(image), new(image))


@pytest.mark.parametrize("name", ["old_4x", "basicsr_x2", "compact_x4", "swinir_x2"])
def test_each_model_runs_to_the_requested_size(folders: list[Path], name: str) -> None:
    catalog = UpscalerCatalog(folders)
    result = catalog.upscale(name, _image(20, 16), 2.5, TileSettings(tile=12, overlap=4))
    assert result.size == (48, 40)  # 50x40 rounded down to multiples of 8, as A1111
    assert numpy.asarray(result).std() > 0


def test_tiled_equals_untiled_outside_the_overlaps(folders: list[Path]) -> None:
    # Compact with one body conv sees 3 input pixels around each pixel: less than the overlap, so a pixel
    # that only one tile covers is computed exactly as without tiles.
    model = load_model(folders[1] / "compact_x4.safetensors")
    image = torch.rand(1, 3, 36, 46)  # tiles overlap by exactly 6: 3 rows, 4 columns
    tile, overlap, scale = 16, 6, 4
    with torch.inference_mode():
        whole = model(image)
        tiled = run_tiled(model, image, scale, tile, overlap)
    assert tiled.shape == whole.shape

    def single(length: int) -> torch.Tensor:
        cover = torch.zeros(length * scale)
        for start, end in tile_spans(length, tile, overlap):
            cover[start * scale : end * scale] += 1
        return cover == 1

    alone = single(36)[:, None] & single(46)[None, :]
    difference = (tiled - whole).abs()[0].amax(0)
    assert alone.float().mean() > 0.3 and (~alone).any()
    assert difference[alone].max() < 1e-5
    # Inside the overlaps the cross-fade leans on the tile whose edge is further away: close, not equal.
    assert difference[~alone].mean() < 0.02 and difference[~alone].max() < 0.1


def test_tile_spans_cover_with_the_overlap() -> None:
    for length, tile, overlap in [(100, 32, 8), (33, 32, 8), (512, 192, 8), (64, 32, 0)]:
        spans = tile_spans(length, tile, overlap)
        assert spans[0][0] == 0 and spans[-1][1] == length
        assert all(end - start == tile for start, end in spans)
        assert all(
            a_end - b_start >= overlap for (_, a_end), (b_start, _) in zip(spans, spans[1:], strict=False)
        )
    assert tile_spans(30, 32, 8) == [(0, 30)]


def test_progress_counts_tiles_and_stop_interrupts(folders: list[Path]) -> None:
    model = load_model(folders[1] / "compact_x4.safetensors")
    seen: list[tuple[int, int]] = []
    upscale_image(model, _image(40, 24), 4, TileSettings(16, 4), on_progress=lambda d, t: seen.append((d, t)))
    assert seen == [(n, 6) for n in range(1, 7)]  # 3 columns x 2 rows, one pass
    asked: list[int] = []

    def stop_after_two() -> bool:
        asked.append(1)
        return len(asked) > 2

    with pytest.raises(Interrupted):
        upscale_image(model, _image(40, 24), 4, TileSettings(16, 4), should_stop=stop_after_two)
    assert len(asked) == 3


@pytest.mark.parametrize(
    ("scale", "native", "passes"),
    [(4, 4, 1), (2, 4, 1), (8, 4, 2), (5, 2, 3), (16, 2, 3), (1, 1, 1), (3, 1, 1), (0.5, 4, 0), (1, 4, 1)],
)
def test_passes_follow_a1111(scale: float, native: int, passes: int) -> None:
    assert len(planned_passes(64, 48, scale, native)) == passes


def test_any_scale_is_exact_after_lanczos(folders: list[Path]) -> None:
    catalog = UpscalerCatalog(folders)
    assert catalog.upscale("basicsr_x2", _image(17, 13), 3.3, TileSettings(0, 0)).size == (56, 40)
    assert catalog.upscale("compact_x4", _image(16, 16), 1.0).size == (16, 16)


@pytest.mark.parametrize(
    ("write", "reason"),
    [
        (lambda p: p.write_bytes(b"\x00garbage" * 10), "not a readable PyTorch file"),
        (
            lambda p: p.with_suffix(".safetensors").write_bytes(b"\x10\x00\x00\x00garbage"),
            "not a valid safetensors",
        ),
        (lambda p: torch.save({"foo.weight": torch.zeros(3, 3)}, p), "not a recognised upscaler"),
        (lambda p: torch.save([1, 2, 3], p), "holds a list, not a dictionary of weights"),
    ],
)
def test_bad_files_are_refused_with_the_file_name(
    tmp_path: Path, write: Callable[[Path], None], reason: str
) -> None:
    write(tmp_path / "bad.pth")
    path = next(tmp_path.iterdir())
    with pytest.raises(ModelLoadError, match=f"{path.name}: {reason}"):
        load_model(path)
    catalog = UpscalerCatalog([tmp_path])
    assert catalog.scan() == [] and reason in catalog.refused()[path]


class _RunsCode:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (print, ("pickled code ran",))


def test_pickled_code_is_refused_not_run(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "hostile.pth"
    torch.save({"model.0.weight": torch.zeros(1), "payload": _RunsCode()}, path)
    assert zipfile.is_zipfile(path)
    with pytest.raises(ModelLoadError, match=r"hostile.pth: refused to load: .*wants to run code \(print\)"):
        load_model(path)
    legacy = tmp_path / "legacy.pth"
    legacy.write_bytes(pickle.dumps(_RunsCode()))
    with pytest.raises(ModelLoadError, match="legacy.pth"):
        load_model(legacy)
    assert "pickled code ran" not in capfd.readouterr().out


def test_face_model_is_not_an_upscaler(tmp_path: Path) -> None:
    load_spandrel()
    from spandrel.architectures.GFPGAN import GFPGAN

    torch.save({"params_ema": GFPGAN().state_dict()}, tmp_path / "GFPGANv1.4.pth")
    with pytest.raises(ModelLoadError, match="GFPGANv1.4.pth: a GFPGAN model for 'FaceSR'"):
        load_model(tmp_path / "GFPGANv1.4.pth")


def test_unknown_name_and_duplicate_names(folders: list[Path], tmp_path: Path) -> None:
    with pytest.raises(
        ModelNotFound, match=r"'nope' not found in .*ESRGAN.* \(known: new_4x, old_4x, basicsr_x2"
    ):
        UpscalerCatalog(folders).get("nope")
    (tmp_path / "DAT").mkdir()
    save_file(_compact(2, seed=5), tmp_path / "DAT" / "compact_x4.safetensors")
    names = [model.name for model in UpscalerCatalog([folders[1], tmp_path / "DAT"]).scan()]
    assert names == ["basicsr_x2", "compact_x4", "compact_x4 (DAT)"]


def test_services_list_plain_and_model_upscalers_in_a1111_shape(folders: list[Path]) -> None:
    catalog = UpscalerCatalog(folders)
    listing = [dataclasses.asdict(info) for info in list_upscalers(catalog)]
    assert [item["name"] for item in listing[:3]] == ["None", "Lanczos", "Nearest"]
    assert listing[0] == {
        "name": "None",
        "model_name": None,
        "model_path": None,
        "model_url": None,
        "scale": 4,
    }
    assert {
        "name": "compact_x4",
        "model_name": "RealESRGAN Compact",
        "model_path": str(folders[1] / "compact_x4.safetensors"),
        "model_url": None,
        "scale": 4,
    } in listing
    assert len(listing) == 3 + 5 and [info.name for info in list_upscalers()] == [
        "None",
        "Lanczos",
        "Nearest",
    ]


def test_extras_run_a_model_upscaler_with_its_infotext(folders: list[Path]) -> None:
    models = ModelUpscaling(UpscalerCatalog(folders), TileSettings(16, 4))
    request = ExtrasResize(scale=3, upscaler_1="compact_x4", upscaler_2="Lanczos", upscaler_2_visibility=0.5)
    result, info = run_extras(_image(24, 16), request, models)
    assert result.size == (72, 48)
    assert info == {
        "Postprocess upscale by": "3",
        "Postprocess upscaler": "compact_x4",
        "Postprocess upscaler 2": "Lanczos",
    }
    with pytest.raises(
        InvalidParameter, match="upscaler_1: unknown upscaler 'compact_x4'; valid: None, Lanczos"
    ):
        run_extras(_image(24, 16), request)  # without the catalog only the plain resizers exist
