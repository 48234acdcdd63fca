"""A1111's 💾 Save and 🗃️ Zip buttons: copies of gallery images in one folder (option outdir_save), each
with its infotext, a row per image in the folder's log.csv, and optionally one zip of the copies.

Which images: the selected one when the option save_selected_only is on and a picture (not a batch grid)
is selected, else all of them, grids included (A1111's rule). log.csv has A1111's header; its rows are
read from each image's infotext.
"""

from __future__ import annotations

import csv
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from webui.core import infotext as infotext_format
from webui.services.options import SaveOptions
from webui.services.outputs import filename_part, save_image

LOG_NAME = "log.csv"
# A1111's log.csv header ("cfgs" is its name for the CFG scale)
LOG_COLUMNS = ("prompt", "seed", "width", "height", "sampler", "cfgs", "steps", "filename", "negative_prompt")
# A1111's default grid_zip_filename_pattern, less [seed_last] (added below from the last copy's seed)
_ZIP_PATTERN = "[datetime]_[[model_name]]_[seed]"


@dataclass(frozen=True)
class Picture:
    """A gallery image with the infotext shown for it."""

    image: Image.Image
    infotext: str


def chosen(count: int, selected: int, first_image: int, selected_only: bool) -> range:
    """The indices to save among `count` gallery items whose first `first_image` are grids: only
    `selected` when `selected_only` and it is a picture, else all."""
    if selected_only and first_image <= selected < count:
        return range(selected, selected + 1)
    return range(count)


def save_copies(pictures: Sequence[Picture], folder: Path, options: SaveOptions) -> list[Path]:
    """Save each picture into `folder` as the generation saves its images (format, file name pattern, a
    .txt beside it with save_txt) and add its row to log.csv; return the files written, in order."""
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    log = folder / LOG_NAME
    with open(log, "a", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        if handle.tell() == 0:
            writer.writerow(LOG_COLUMNS)
        for picture in pictures:
            fields = infotext_format.parse(picture.infotext) if picture.infotext else {}
            path = save_image(
                picture.image, picture.infotext, folder, _seed(fields), options.fmt,
                save_txt=options.save_txt, quality=options.quality, lossless=options.lossless,
                pattern=options.pattern,
            )  # fmt: skip
            written.append(path)
            if options.save_txt:
                written.append(path.with_suffix(".txt"))
            writer.writerow(_log_row(fields, path.relative_to(folder).as_posix()))
    return written


def zip_copies(files: Sequence[Path], folder: Path, infotexts: Sequence[str]) -> Path:
    """One zip in `folder` holding `files` (by name), named as A1111 names it: date and time, model, first
    and last seed (from the first and last of `infotexts`)."""
    first = infotext_format.parse(infotexts[0]) if infotexts and infotexts[0] else {}
    last = infotext_format.parse(infotexts[-1]) if infotexts and infotexts[-1] else {}
    stem = filename_part(_ZIP_PATTERN, infotexts[0] if infotexts else "", _seed(first))
    archive = folder / f"{stem}-{_seed(last)}.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for file in files:
            zipped.write(file, file.name)
    return archive


def _seed(fields: dict[str, str]) -> int:
    try:
        return int(fields.get("Seed", "-1"))
    except ValueError:  # a hand-edited infotext: the file is still saved, named by its number alone
        return -1


def _log_row(fields: dict[str, str], filename: str) -> list[str]:
    width, _, height = fields.get("Size", "").partition("x")
    return [
        fields.get("Prompt", ""), fields.get("Seed", ""), width, height, fields.get("Sampler", ""),
        fields.get("CFG scale", ""), fields.get("Steps", ""), filename, fields.get("Negative prompt", ""),
    ]  # fmt: skip
