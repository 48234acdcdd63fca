"""The img2img section without a browser: what each sub-tab turns into (image, mask, sizes), and Batch
(folders, mask pairing, the network rule, a real run over a folder)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw

from tests.conftest import make_app, make_data_dir
from webui.core.cmd_args import parse_args
from webui.core.errors import InvalidParameter
from webui.core.params import Img2Img, Txt2Img
from webui.services import batch
from webui.services.batch import BatchFolders
from webui.services.outputs import read_infotext
from webui.ui import img2img, img2img_batch
from webui.ui.img2img import Img2ImgSection, Img2ImgValues

pytestmark = pytest.mark.usefixtures("one_torch_thread")

BASE = Txt2Img(prompt="a cat", negative_prompt="dog", steps=3, seed=77, width=64, height=64, cfg_scale=5.0)


def values(**changes: Any) -> list[Any]:
    """The section's inputs in build() order: img2img mode with nothing uploaded, A1111's UI defaults."""
    defaults = Img2ImgValues(
        mode="img2img", image=None, sketch=None, inpaint=None, inpaint_sketch=None, upload_image=None,
        upload_mask=None, batch_input="", batch_output="", batch_masks="", scale_tab=img2img.RESIZE_TO,
        scale=1.0, resize_mode=0, denoising_strength=0.75, mask_blur=4, inpainting_mask_invert=0,
        inpainting_fill=1, inpaint_full_res=0, inpaint_full_res_padding=32,
    )  # fmt: skip
    return list(defaults._replace(**changes))


def picture(size: tuple[int, int] = (64, 48), colour: str = "#2050a0") -> Image.Image:
    return Image.new("RGB", size, colour)


def layer(size: tuple[int, int], box: tuple[int, int, int, int], colour: str = "#ff0000") -> Image.Image:
    """An editor layer: transparent, with one painted rectangle."""
    painted = Image.new("RGBA", size, (0, 0, 0, 0))
    ImageDraw.Draw(painted).rectangle(box, fill=colour)
    return painted


def editor_value(background: Image.Image, *layers: Image.Image) -> dict[str, Any]:
    composite = background.convert("RGBA")
    for painted in layers:
        composite = Image.alpha_composite(composite, painted)
    return {"background": background.convert("RGBA"), "layers": list(layers), "composite": composite}


def test_mask_is_the_union_of_painted_pixels():
    mask = img2img.mask_from_layers(
        [layer((32, 32), (0, 0, 3, 3)), layer((32, 32), (20, 20, 31, 31))], (32, 32)
    )
    assert mask.mode == "L" and mask.size == (32, 32)
    assert mask.getpixel((1, 1)) == 255 and mask.getpixel((25, 25)) == 255
    assert mask.getpixel((10, 10)) == 0
    assert sum(1 for v in mask.get_flattened_data() if v) == 16 + 144
    faint = layer((32, 32), (5, 5, 6, 6), colour="#ffffff10")  # barely visible paint still masks
    assert img2img.mask_from_layers([faint], (32, 32)).getpixel((5, 5)) == 255


def test_resize_by_rounds_down_to_multiples_of_8():
    assert batch.scaled_size((100, 60), 1.5) == (144, 88)
    assert batch.scaled_size((512, 768), 0.5) == (256, 384)


def test_img2img_tab_keeps_every_txt2img_field_and_sets_the_img2img_ones():
    image = picture()
    params = BASE.replace(sd_model_checkpoint="other")  # as if another section had changed the params
    out = Img2ImgSection(services=None).apply(
        params, values(image=image, denoising_strength=0.4, resize_mode=2, inpaint_full_res=1)
    )
    assert isinstance(out, Img2Img)
    assert out.init_images == (image,) and out.mask is None
    assert (out.prompt, out.seed, out.steps, out.sd_model_checkpoint) == ("a cat", 77, 3, "other")
    assert (out.denoising_strength, out.resize_mode, out.inpaint_full_res) == (0.4, 2, True)
    assert (out.width, out.height) == (64, 64)  # "Resize to": the Width/Height controls


def test_resize_by_takes_the_size_from_the_input_image():
    out = Img2ImgSection(services=None).apply(
        BASE, values(image=picture((100, 60)), scale_tab=img2img.RESIZE_BY, scale=2)
    )
    assert (out.width, out.height) == (200, 120)


def test_inpaint_tab_mask_is_where_the_user_painted():
    background = picture((64, 48))
    out = Img2ImgSection(services=None).apply(
        BASE, values(mode="inpaint", inpaint=editor_value(background, layer((64, 48), (10, 10, 19, 19))))
    )
    assert out.is_inpaint
    assert (
        out.init_images[0].convert("RGB").tobytes() == background.tobytes()
    )  # the paint is not in the image
    assert out.mask.getbbox() == (10, 10, 20, 20)


def test_inpaint_sketch_paints_the_colours_into_the_image_and_masks_them():
    background = picture((64, 48), "#000000")
    out = Img2ImgSection(services=None).apply(
        BASE,
        values(
            mode="inpaint_sketch", mask_blur=0,
            inpaint_sketch=editor_value(background, layer((64, 48), (30, 0, 63, 47), "#00ff00")),
        ),
    )  # fmt: skip
    image = out.init_images[0]
    assert image.getpixel((40, 20)) == (0, 255, 0) and image.getpixel((5, 20)) == (0, 0, 0)
    assert out.mask.getbbox() == (30, 0, 64, 48)


def test_sketch_tab_sends_the_drawing_without_a_mask():
    background = picture((64, 48), "#000000")
    out = Img2ImgSection(services=None).apply(
        BASE, values(mode="sketch", sketch=editor_value(background, layer((64, 48), (0, 0, 9, 9), "#ffffff")))
    )
    assert out.mask is None
    assert out.init_images[0].getpixel((5, 5))[:3] == (255, 255, 255)


def test_inpaint_upload_uses_the_uploaded_mask():
    mask = Image.new("L", (64, 48), 0)
    out = Img2ImgSection(services=None).apply(
        BASE,
        values(mode="inpaint_upload", upload_image=picture(), upload_mask=mask, inpainting_mask_invert=1),
    )
    assert out.mask is mask and out.inpainting_mask_invert == 1


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({}, "upload one in the img2img tab"),
        ({"mode": "inpaint"}, "upload one in the Inpaint tab"),
        ({"mode": "inpaint_upload", "upload_image": Image.new("RGB", (8, 8))}, "needs a mask"),
    ],
)
def test_missing_inputs_say_what_to_upload(changes: dict[str, Any], message: str):
    with pytest.raises(InvalidParameter, match=message):
        Img2ImgSection(services=None).apply(BASE, values(**changes))


def test_batch_mode_leaves_the_images_to_the_batch_run():
    out = Img2ImgSection(services=None).apply(
        BASE, values(mode="batch", batch_input="in", denoising_strength=0.3)
    )
    assert isinstance(out, Img2Img) and out.init_images == () and out.denoising_strength == 0.3


def save(path: Path, image: Image.Image | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    (image or picture()).save(path)
    return path


def test_batch_masks_pair_by_name_or_a_single_mask_covers_all(tmp_path: Path):
    a, b = save(tmp_path / "in" / "a.png"), save(tmp_path / "in" / "b.jpg")
    mask_a = save(tmp_path / "masks" / "a.webp")
    pairs, warnings = batch.batch_files(BatchFolders(tmp_path / "in", None, tmp_path / "masks"))
    assert pairs == [(a, mask_a), (b, mask_a)] and warnings == []  # the only mask: for every image
    save(tmp_path / "masks" / "c.png")
    pairs, warnings = batch.batch_files(BatchFolders(tmp_path / "in", None, tmp_path / "masks"))
    assert pairs == [(a, mask_a)]
    assert len(warnings) == 1 and "b.jpg" in warnings[0]
    assert batch.batch_files(BatchFolders(tmp_path / "in", None, None)) == (
        [(a, None), (b, None)],
        [],
    )


class _FakeApp:
    def __init__(self, data_dir: Path, *flags: str) -> None:
        self.args = parse_args(["--data-dir", str(data_dir), *flags])
        self.paths = type("Paths", (), {"data_dir": data_dir})


def test_batch_folders_relative_to_data_dir_and_must_exist(tmp_path: Path):
    (tmp_path / "in").mkdir()
    folders = img2img_batch.batch_folders(_FakeApp(tmp_path), "in", "", "")
    assert folders == BatchFolders(tmp_path.resolve() / "in", None, None)
    with pytest.raises(InvalidParameter, match="does not exist"):
        img2img_batch.batch_folders(_FakeApp(tmp_path), "missing", "", "")
    with pytest.raises(InvalidParameter, match="needs an input directory"):
        img2img_batch.batch_folders(_FakeApp(tmp_path), " ", "out", "")


def test_batch_folders_outside_the_data_dir_only_when_not_exposed(tmp_path: Path):
    data, outside = tmp_path / "data", tmp_path / "elsewhere"
    data.mkdir()
    outside.mkdir()
    assert img2img_batch.batch_folders(_FakeApp(data), str(outside), "", "").input == outside.resolve()
    for flag in ("--listen", "--share"):
        with pytest.raises(InvalidParameter, match="outside the data folder"):
            img2img_batch.batch_folders(_FakeApp(data, flag), str(outside), "", "")
        with pytest.raises(InvalidParameter, match="outside the data folder"):
            img2img_batch.batch_folders(_FakeApp(data, flag), "in", "../elsewhere", "")  # no escape by ..
    allowed = _FakeApp(data, "--listen", "--enable-insecure-extension-access")
    assert img2img_batch.batch_folders(allowed, str(outside), "", "").input == outside.resolve()


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, tiny_sd1_file: Path) -> Iterator[Any]:
    app = make_app(make_data_dir(tmp_path_factory.mktemp("img2img-batch"), tiny_sd1_file))
    app.load_initial_checkpoint()
    yield app
    app.jobs.stop()


def test_batch_run_saves_one_image_per_file_named_after_it(app: Any):
    data = app.paths.data_dir
    save(data / "in" / "first.png", picture((64, 64), "#ff0000"))
    save(data / "in" / "second.png", picture((80, 64), "#00ff00"))
    (data / "in" / "notes.txt").write_text("not an image")
    params = Img2ImgSection(services=None).apply(BASE, values(mode="batch"))
    folders = img2img_batch.batch_folders(app, "in", "out", "")
    run = img2img_batch.BatchRun(app, params, folders, None, owner="session:batch")
    lines = [snapshot.html for snapshot in run]  # each file's progress, labelled with the file
    result = run.result()
    assert any("File 1/3: first.png" in line for line in lines)
    assert any("File 3/3: second.png" in line for line in lines)  # notes.txt (skipped) is 2/3
    names = sorted(path.name for path in (data / "out").iterdir())
    assert names == ["00000-first.png", "00001-second.png"]
    assert [Path(p).name for p in result.paths] == names
    assert len(result.images) == 2 and all(image.size == (64, 64) for image in result.images)
    assert any("notes.txt" in warning and "not an image" in warning for warning in result.warnings)
    saved = Image.open(data / "out" / "00000-first.png")
    assert "Denoising strength: 0.75" in read_infotext(saved) and "Seed: 77" in read_infotext(saved)
    # nothing went to the usual outputs folder
    assert not list(app.paths.outputs_dir.glob("img2img-images/*/*"))
    # each file's job is the page's (the queue's turns)
    assert [job.owner for job in app.jobs.known() if job.kind == "img2img"] == ["session:batch"] * 2
