"""💾 / 🗃️ / 📂 services: copies with their infotext and A1111's log.csv, the zip, the folder opener."""

from __future__ import annotations

import csv
import sys
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from webui.core.errors import UserError
from webui.services import folder_opener
from webui.services.folder_opener import open_folder
from webui.services.options import SaveOptions
from webui.services.outputs import read_infotext
from webui.services.saved_copies import LOG_COLUMNS, Picture, chosen, save_copies, zip_copies

TEXT = (
    'a red cube, "quoted"\nNegative prompt: blurry\n'
    "Steps: 3, Sampler: Euler a, CFG scale: 6.5, Seed: {seed}, Size: 64x48, Model: tiny"
)
PNG = SaveOptions(fmt="png", save_txt=False, quality=80, lossless=False, pattern="")


def _picture(seed: int, colour: tuple[int, int, int] = (200, 30, 40)) -> Picture:
    return Picture(Image.new("RGB", (64, 48), colour), TEXT.format(seed=seed))


@pytest.mark.parametrize(
    ("selected", "first_image", "selected_only", "expected"),
    [
        (2, 1, True, [2]),  # a picture is selected: it alone
        (0, 1, True, [0, 1, 2]),  # the grid is selected: everything, as A1111
        (2, 1, False, [0, 1, 2]),  # save_selected_only off: everything
        (-1, 0, True, [0, 1, 2]),  # nothing selected
        (5, 0, True, [0, 1, 2]),  # an index past the gallery (results changed meanwhile)
    ],
)
def test_which_images_are_saved(selected: int, first_image: int, selected_only: bool, expected: list[int]):
    assert list(chosen(3, selected, first_image, selected_only)) == expected


def test_copies_keep_their_infotext_and_log_csv_gets_a1111_columns_and_a_row_each(tmp_path: Path):
    folder = tmp_path / "outputs" / "save"
    first = save_copies([_picture(11), _picture(12, (0, 0, 255))], folder, PNG)
    second = save_copies([_picture(13)], folder, PNG)
    assert [p.name for p in first + second] == ["00000-11.png", "00001-12.png", "00002-13.png"]
    with Image.open(first[1]) as loaded:
        assert read_infotext(loaded) == TEXT.format(seed=12)
        assert loaded.convert("RGB").getpixel((5, 5)) == (0, 0, 255)
    with open(folder / "log.csv", encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == list(LOG_COLUMNS)  # the header once, though the file was appended to twice
    assert rows[1:] == [
        ['a red cube, "quoted"', str(seed), "64", "48", "Euler a", "6.5", "3", f"{n:05}-{seed}.png", "blurry"]
        for n, seed in enumerate((11, 12, 13))
    ]


def test_save_txt_and_format_follow_the_saving_options(tmp_path: Path):
    options = SaveOptions(fmt="jpg", save_txt=True, quality=90, lossless=False, pattern="[seed]-[steps]")
    files = save_copies([_picture(7)], tmp_path, options)
    assert [f.name for f in files] == ["00000-7-3.jpg", "00000-7-3.txt"]
    assert files[1].read_text(encoding="utf-8") == TEXT.format(seed=7)


def test_a_picture_without_infotext_is_saved_with_an_empty_row(tmp_path: Path):
    files = save_copies([Picture(Image.new("RGB", (8, 8)), "")], tmp_path, PNG)
    assert files[0].name == "00000--1.png"
    with open(tmp_path / "log.csv", encoding="utf-8", newline="") as handle:
        assert list(csv.reader(handle))[1] == ["", "", "", "", "", "", "", "00000--1.png", ""]


def test_zip_holds_the_copies_and_is_named_by_model_and_seeds(tmp_path: Path):
    files = save_copies([_picture(21), _picture(22)], tmp_path, PNG)
    archive = zip_copies(files, tmp_path, [TEXT.format(seed=21), TEXT.format(seed=22)])
    assert archive.parent == tmp_path
    assert archive.name.endswith("_[tiny]_21-22.zip")
    with zipfile.ZipFile(archive) as zipped:
        assert zipped.namelist() == ["00000-21.png", "00001-22.png"]
        assert zipped.read("00001-22.png") == files[1].read_bytes()


def test_open_folder_creates_the_folder_and_hands_it_to_the_opener(tmp_path: Path):
    opened: list[Path] = []
    folder = tmp_path / "outputs" / "txt2img-images"
    assert open_folder(folder, opened.append) == folder
    assert opened == [folder] and folder.is_dir()


def test_system_opener_without_a_file_manager_is_a_user_error(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no xdg-open (nor open) on this PATH
    if sys.platform == "win32":
        pytest.skip("Windows opens folders with os.startfile, no program on PATH to be missing")
    with pytest.raises(UserError, match="Cannot open .*: no (xdg-)?open on the server"):
        folder_opener.system_opener(tmp_path)
