import io
import threading
from datetime import date
from pathlib import Path

import piexif
import piexif.helper
import pytest
from PIL import Image

from webui.core.errors import InvalidParameter
from webui.services import outputs
from webui.services.outputs import dated_dir, embed_infotext, next_number, read_infotext, save_image

INFOTEXT = (
    "a red cube, (shiny:1.2) — ünïcode ✓\nNegative prompt: blurry\n"
    "Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1234, Size: 64x48"
)


def _image(mode: str = "RGB") -> Image.Image:
    return Image.new(mode, (64, 48), (200, 30, 40, 128)[: len(mode)] if mode != "L" else 128)


@pytest.mark.parametrize("fmt", ["png", "jpg", "jpeg", "webp", "PNG"])
def test_round_trip_keeps_infotext_and_pixels(tmp_path: Path, fmt: str) -> None:
    path = save_image(_image(), INFOTEXT, tmp_path, seed=1234, fmt=fmt)
    assert path.name == f"00000-1234.{fmt.lower()}"
    with Image.open(path) as loaded:
        assert read_infotext(loaded) == INFOTEXT
        assert loaded.size == (64, 48)
        red, green, _ = loaded.convert("RGB").getpixel((10, 10))
        assert red > 150 and green < 80


def test_reads_a1111_style_exif_comment() -> None:
    # What A1111 writes for JPEG/WebP, built with piexif as it does, independent of our writer.
    comment = piexif.helper.UserComment.dump("hello", encoding="unicode")
    exif = piexif.dump({"Exif": {piexif.ExifIFD.UserComment: comment}})
    buffer = io.BytesIO()
    _image().save(buffer, format="JPEG", exif=exif)
    with Image.open(buffer) as loaded:
        assert read_infotext(loaded) == "hello"


def test_image_without_infotext_reads_none(tmp_path: Path) -> None:
    for fmt in ("png", "jpg", "webp"):
        path = save_image(_image(), "", tmp_path, seed=1, fmt=fmt)
        with Image.open(path) as loaded:
            assert read_infotext(loaded) is None


def test_jpeg_drops_alpha_and_webp_keeps_it(tmp_path: Path) -> None:
    jpg = save_image(_image("RGBA"), INFOTEXT, tmp_path, seed=5, fmt="jpg")
    webp = save_image(_image("RGBA"), INFOTEXT, tmp_path, seed=5, fmt="webp")
    with Image.open(jpg) as loaded:
        assert loaded.mode == "RGB"
    with Image.open(webp) as loaded:
        assert loaded.mode == "RGBA"
        assert read_infotext(loaded) == INFOTEXT


def test_unknown_format_names_valid_ones(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameter, match="gif.*png, jpg, jpeg, webp"):
        save_image(_image(), INFOTEXT, tmp_path, seed=1, fmt="gif")
    assert list(tmp_path.iterdir()) == []


def test_too_long_infotext_for_jpeg_is_a_clear_error() -> None:
    with pytest.raises(InvalidParameter, match="too long for JPEG"):
        embed_infotext(_image(), "x" * 40000, "jpg")
    assert len(embed_infotext(_image(), "x" * 40000, "webp")) > 80000


def test_counter_continues_after_the_largest_existing_number(tmp_path: Path) -> None:
    assert next_number(tmp_path) == 0
    (tmp_path / "00007-99.png").write_bytes(b"")
    (tmp_path / "00003-1.jpg").write_bytes(b"")
    (tmp_path / "notes-00050.txt").write_bytes(b"")  # does not start with a number: ignored
    first = save_image(_image(), INFOTEXT, tmp_path, seed=42)
    second = save_image(_image(), INFOTEXT, tmp_path, seed=42)
    assert (first.name, second.name) == ("00008-42.png", "00009-42.png")


def test_save_txt_writes_infotext_beside_the_image(tmp_path: Path) -> None:
    path = save_image(_image(), INFOTEXT, tmp_path, seed=7, fmt="webp", save_txt=True)
    assert path.with_suffix(".txt").read_text(encoding="utf-8") == INFOTEXT
    # The text file takes the same number, and the next image does not reuse it.
    assert save_image(_image(), INFOTEXT, tmp_path, seed=7).name == "00001-7.png"


def test_creates_the_dated_folder(tmp_path: Path) -> None:
    folder = dated_dir(tmp_path / "txt2img-images", date(2024, 5, 31))
    path = save_image(_image(), INFOTEXT, folder, seed=3)
    assert path == tmp_path / "txt2img-images" / "2024-05-31" / "00000-3.png"
    assert path.is_file()


def test_failing_encoder_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_save(self: Image.Image, fp: object, *args: object, **kwargs: object) -> None:
        fp.write(b"\x89PNG half an image")  # type: ignore[attr-defined]
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_image(_image(), INFOTEXT, tmp_path, seed=1)
    assert list(tmp_path.iterdir()) == []


def test_failing_rename_leaves_no_temporary_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_replace(src: object, dst: object) -> None:
        raise OSError("rename failed")

    monkeypatch.setattr(outputs.os, "replace", broken_replace)
    with pytest.raises(OSError, match="rename failed"):
        save_image(_image(), INFOTEXT, tmp_path, seed=1, save_txt=True)
    assert list(tmp_path.iterdir()) == []


def test_concurrent_saves_get_distinct_numbers(tmp_path: Path) -> None:
    barrier = threading.Barrier(8)
    paths: list[Path] = []

    def worker() -> None:
        barrier.wait()
        paths.append(save_image(_image(), INFOTEXT, tmp_path, seed=1, save_txt=True))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(p.name for p in paths) == [f"{n:05}-1.png" for n in range(8)]
    assert len(list(tmp_path.glob("*.txt"))) == 8
    assert not list(tmp_path.glob(".*"))


PATTERN_INFOTEXT = (
    "a Red/cube: shiny, (gold:1.2)\nNegative prompt: blurry\n"
    "Steps: 7, Sampler: Euler a, Schedule type: Karras, CFG scale: 6.5, Seed: 99, Size: 64x48, "
    "Model hash: abcdef1234, Model: tiny-sd1"
)


def test_filename_pattern_fills_a1111_tokens_from_the_infotext(tmp_path: Path) -> None:
    from datetime import datetime

    pattern = "[seed]-[steps]-[CFG]-[width]x[height]-[sampler]-[model_name]-[model_hash]-[date]-[datetime]"
    name = outputs.filename_part(pattern, PATTERN_INFOTEXT, 1234, now=datetime(2024, 5, 31, 13, 4, 5))
    # The seed argument wins over the infotext's (a batch gives each image its own seed).
    assert name == "1234-7-6.5-64x48-Euler a-tiny-sd1-abcdef1234-2024-05-31-20240531130405"
    path = save_image(
        _image(), PATTERN_INFOTEXT, tmp_path, seed=1234, pattern="[steps]-[prompt_words]", save_txt=True
    )
    assert path.name == "00000-7-a Red cube shiny gold 1 2.png"
    assert path.with_suffix(".txt").is_file()
    # The counter still sees the NNNNN- prefix of patterned names.
    assert save_image(_image(), PATTERN_INFOTEXT, tmp_path, seed=1).name == "00001-1.png"


def test_filename_pattern_never_leaves_the_folder(tmp_path: Path) -> None:
    text = "../../etc/passwd\\x: y*?\nSteps: 1, Sampler: Euler, CFG scale: 7, Seed: 5, Size: 64x48"
    path = save_image(_image(), text, tmp_path, seed=5, pattern="../[prompt]/..")
    assert path.parent == tmp_path and "/" not in path.name and "\\" not in path.name
    assert path.name.startswith("00000-") and path.is_file()
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("", "42"),  # empty pattern: A1111's default [seed]
        ("   ", "42"),
        ("[prompt] .", "42"),  # only a trailing dot/space remains of an empty prompt: fall back to the seed
        ("[nonsense]-[seed]", "[nonsense]-42"),  # unknown tokens stay as written, as in A1111
        ("[model_hash]", "[model_hash]"),  # no value in this infotext: kept as written
        ("[prompt_words]", "empty"),
    ],
)
def test_filename_pattern_edge_cases(pattern: str, expected: str) -> None:
    text = "Steps: 1, Sampler: Euler, CFG scale: 7, Seed: 5, Size: 64x48"
    assert outputs.filename_part(pattern, text, 42) == expected


def test_long_prompt_names_stay_within_file_name_limits(tmp_path: Path) -> None:
    text = "ü" * 400 + "\nSteps: 1, Sampler: Euler, CFG scale: 7, Seed: 5, Size: 64x48"
    path = save_image(_image(), text, tmp_path, seed=5, pattern="[prompt]")
    assert len(path.name.encode("utf-8")) <= 255 and path.is_file()
