"""Save generated images with their A1111 infotext, and read it back.

PNG keeps the infotext in a text chunk named "parameters"; JPEG and WebP keep it in the EXIF
UserComment (piexif's "unicode" encoding), as A1111 writes them, so A1111's "PNG Info" tab reads our
files and we read its files. Files are named like A1111's: NNNNN-SEED.ext, with a counter that never
reuses a number already in the folder; the option "Images filename pattern" replaces SEED with A1111
[tokens] filled from the infotext.
"""

from __future__ import annotations

import io
import os
import re
import string
import threading
import uuid
from collections.abc import Callable, Mapping
from datetime import date, datetime
from pathlib import Path
from types import MappingProxyType

import piexif
import piexif.helper
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from webui.core import infotext as infotext_format
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
    exif: bytes = piexif.dump({"Exif": {_USER_COMMENT: comment}})
    return exif


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
    pattern: str = "",
) -> Path:
    """Save `image` as `directory`/NNNNN-SEED.ext with its infotext embedded; return the path.

    A non-empty `pattern` (A1111's "Images filename pattern") names the file NNNNN-<pattern filled in>
    instead. With `save_txt`, a .txt file of the same name beside it holds the infotext too. Each file
    appears whole or not at all: it is written to a hidden temporary file in the same folder and
    renamed into place.
    """
    key = normalize_format(fmt)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    name = filename_part(pattern, infotext, seed)
    encoded = embed_infotext(image, infotext, key, quality=quality, lossless=lossless)
    staged = [(_stage(directory, encoded), key)]
    try:
        if save_txt:
            staged.append((_stage(directory, infotext.encode("utf-8")), "txt"))
        with _NUMBERING_LOCK:
            stem = f"{next_number(directory):05}-{name}"
            for temp, ext in staged:
                os.replace(temp, directory / f"{stem}.{ext}")
    finally:
        for temp, _ in staged:
            temp.unlink(missing_ok=True)
    return directory / f"{stem}.{key}"


# Characters A1111 replaces in file names (plus control characters); ends that it strips.
_UNSAFE_CHARS = re.compile(r'[#<>:"/\\|?*\x00-\x1f\x7f]')
_NON_LETTERS = re.compile(rf"[\s{re.escape(string.punctuation)}]+")
_TOKEN = re.compile(r"\[([^\[\]]+)\]")
# Leaves room for "NNNNN-", the extension and multi-byte characters within a 255-byte file name.
_MAX_NAME_BYTES = 200
_PROMPT_WORDS = 8  # A1111's "directories_max_prompt_words" default

_Fields = Mapping[str, str]


def _size(fields: _Fields, index: int) -> str | None:
    size = re.fullmatch(r"\s*(\d+)x(\d+)\s*", fields.get("Size", ""))
    return size[index] if size else None


def _prompt_words(fields: _Fields) -> str:
    words = [word for word in _NON_LETTERS.split(fields.get("Prompt", "")) if word]
    return " ".join(words[:_PROMPT_WORDS]) or "empty"


# A1111's filename tokens that our infotext can fill; None leaves the token as written (A1111 does too).
_TOKENS: Mapping[str, Callable[[_Fields, datetime], str | None]] = MappingProxyType(
    {
        "seed": lambda f, _: f.get("Seed"),
        "steps": lambda f, _: f.get("Steps"),
        "cfg": lambda f, _: f.get("CFG scale"),
        "width": lambda f, _: _size(f, 1),
        "height": lambda f, _: _size(f, 2),
        "sampler": lambda f, _: f.get("Sampler"),
        "scheduler": lambda f, _: f.get("Schedule type"),
        "model_name": lambda f, _: f.get("Model"),
        "model_hash": lambda f, _: f.get("Model hash"),
        "clip_skip": lambda f, _: f.get("Clip skip", "1"),
        "denoising": lambda f, _: f.get("Denoising strength"),
        "prompt": lambda f, _: f.get("Prompt"),
        "prompt_words": lambda f, _: _prompt_words(f),
        "date": lambda _, now: now.date().isoformat(),
        "datetime": lambda _, now: now.strftime("%Y%m%d%H%M%S"),
    }
)


def sanitize_filename(text: str) -> str:
    """`text` safe as (part of) a file name: no path separators or characters Windows refuses, no
    leading spaces or trailing dots/spaces, at most 200 UTF-8 bytes."""
    text = _UNSAFE_CHARS.sub("_", text)
    text = text.encode("utf-8")[:_MAX_NAME_BYTES].decode("utf-8", errors="ignore")
    return text.lstrip(" ").rstrip(" .")


def filename_part(pattern: str, infotext: str, seed: int, now: datetime | None = None) -> str:
    """The file name after "NNNNN-": `pattern` with its [tokens] (case-insensitive) filled from the
    infotext, sanitised; the seed when the pattern is empty or leaves nothing."""
    if not pattern.strip():
        return str(seed)
    fields = {**infotext_format.parse(infotext), "Seed": str(seed)} if infotext else {"Seed": str(seed)}
    moment = now or datetime.now()

    def fill(match: re.Match[str]) -> str:
        token = _TOKENS.get(match[1].strip().lower())
        value = token(fields, moment) if token else None
        return match[0] if value is None else _UNSAFE_CHARS.sub("_", value)

    return sanitize_filename(_TOKEN.sub(fill, pattern)) or str(seed)


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
