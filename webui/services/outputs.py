"""Save generated images with their A1111 infotext, and read it back.

PNG keeps the infotext in a text chunk named "parameters"; JPEG and WebP keep it in the EXIF
UserComment (piexif's "unicode" encoding), as A1111 writes them, so A1111's "PNG Info" tab reads our
files and we read its files. Files are named like A1111's: NNNNN-SEED.ext, with a counter that never
reuses a number already in the folder.
"""

from __future__ import annotations

import io
import os
import re
import threading
import uuid
from datetime import date
from pathlib import Path
from types import MappingProxyType

import piexif
import piexif.helper
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from webui.core.errors import InvalidParameter

IMAGE_FORMATS = ("png", "jpg", "jpeg", "webp")
_PIL_FORMATS = MappingProxyType({"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "webp": "WEBP"})
_NUMBERED = re.compile(r"^(\d+)-")
_EXIF_IFD = 0x8769
_USER_COMMENT = piexif.ExifIFD.UserComment
# A JPEG APP1 segment holds at most this many bytes of EXIF (Pillow's limit).
_JPEG_EXIF_MAX = 65533
# Picking the next number and renaming into it must not interleave between threads.
_NUMBERING_LOCK = threading.Lock()


def normalize_format(fmt: str) -> str:
    """Lower-case file extension for `fmt`; InvalidParameter for formats we cannot save."""
    key = fmt.lower().lstrip(".")
    if key not in _PIL_FORMATS:
        raise InvalidParameter(f"unknown image format {fmt!r}; valid formats: {', '.join(IMAGE_FORMATS)}")
    return key


def embed_infotext(
    image: Image.Image, infotext: str, fmt: str = "png", *, quality: int = 80, lossless: bool = False
) -> bytes:
    """Encode `image` as `fmt` with `infotext` stored where A1111 stores it. An empty infotext is omitted."""
    key = normalize_format(fmt)
    buffer = io.BytesIO()
    if key == "png":
        pnginfo = PngInfo()
        if infotext:
            pnginfo.add_text("parameters", infotext)  # falls back to iTXt for non-latin-1 text
        image.save(buffer, format="PNG", pnginfo=pnginfo)
        return buffer.getvalue()
    exif = _exif_with_comment(infotext) if infotext else b""
    if key == "webp":
        image.save(buffer, format="WEBP", quality=quality, lossless=lossless, exif=exif)
        return buffer.getvalue()
    if len(exif) > _JPEG_EXIF_MAX:
        raise InvalidParameter(
            f"infotext too long for JPEG EXIF ({len(exif)} bytes, at most {_JPEG_EXIF_MAX}); "
            "save as png or webp"
        )
    if image.mode not in ("RGB", "L", "CMYK"):
        image = image.convert("RGB")  # JPEG has no alpha; A1111 drops it the same way
    image.save(buffer, format="JPEG", quality=quality, exif=exif)
    return buffer.getvalue()


def _exif_with_comment(infotext: str) -> bytes:
    comment = piexif.helper.UserComment.dump(infotext, encoding="unicode")
    return piexif.dump({"Exif": {_USER_COMMENT: comment}})


def read_infotext(image: Image.Image) -> str | None:
    """The infotext stored in `image` (PNG text chunk or EXIF UserComment), or None when it has none."""
    # PngImageFile.text also sees chunks stored after the image data (it loads the image for them).
    text = getattr(image, "text", None) or image.info
    parameters = text.get("parameters")
    if isinstance(parameters, str) and parameters:
        return parameters
    comment = image.getexif().get_ifd(_EXIF_IFD).get(_USER_COMMENT)
    if not isinstance(comment, bytes) or not comment:
        return None
    try:
        decoded = piexif.helper.UserComment.load(comment)
    except ValueError:  # no or unknown encoding prefix: other tools write raw UTF-8
        decoded = comment.decode("utf-8", errors="ignore")
    return decoded.rstrip("\x00") or None


def next_number(directory: Path) -> int:
    """One more than the largest NNNNN- prefix among the files in `directory` (0 when there are none)."""
    numbers = [int(m.group(1)) for name in os.listdir(directory) if (m := _NUMBERED.match(name))]
    return max(numbers, default=-1) + 1


def dated_dir(base: Path, day: date | None = None) -> Path:
    """A1111's per-day folder under `base`, e.g. outputs/txt2img-images/2024-05-31."""
    return Path(base) / (day or date.today()).isoformat()


def save_image(
    image: Image.Image,
    infotext: str,
    directory: Path,
    seed: int,
    fmt: str = "png",
    *,
    save_txt: bool = False,
    quality: int = 80,
    lossless: bool = False,
) -> Path:
    """Save `image` as `directory`/NNNNN-SEED.ext with its infotext embedded; return the path.

    With `save_txt`, NNNNN-SEED.txt beside it holds the infotext too. Each file appears whole or not at
    all: it is written to a hidden temporary file in the same folder and renamed into place.
    """
    key = normalize_format(fmt)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    encoded = embed_infotext(image, infotext, key, quality=quality, lossless=lossless)
    staged = [(_stage(directory, encoded), key)]
    try:
        if save_txt:
            staged.append((_stage(directory, infotext.encode("utf-8")), "txt"))
        with _NUMBERING_LOCK:
            stem = f"{next_number(directory):05}-{seed}"
            for temp, ext in staged:
                os.replace(temp, directory / f"{stem}.{ext}")
    finally:
        for temp, _ in staged:
            temp.unlink(missing_ok=True)
    return directory / f"{stem}.{key}"


def _stage(directory: Path, data: bytes) -> Path:
    """Write `data` durably to a new hidden file in `directory` (it never matches the NNNNN- pattern)."""
    temp = directory / f".{uuid.uuid4().hex}.tmp"
    # os.open with 0o666 lets the umask decide permissions, as a plain open() would for the final file.
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return temp
