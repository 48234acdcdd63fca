"""Saved prompt styles: A1111's styles.csv (columns name, prompt, negative_prompt).

A style's prompt either holds the placeholder `{prompt}`, replaced by the user's prompt, or is appended
to it after ", " (A1111's rule; the same for the negative prompt). Styles apply in the order given. The
file is reread when it changes on disk, so hand edits show up without a restart, and it is written via a
temporary file, so it is always whole.
"""

from __future__ import annotations

import csv
import io
import os
import threading
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from webui.core.errors import InvalidParameter, UserError

PLACEHOLDER = "{prompt}"
FIELDS = ("name", "prompt", "negative_prompt")
_ENCODING = "utf-8-sig"  # A1111 reads and writes the file with a BOM-tolerant codec


@dataclass(frozen=True)
class PromptStyle:
    name: str
    prompt: str = ""
    negative_prompt: str = ""

    def as_dict(self) -> dict[str, str]:
        """The shape of one item of A1111's GET /sdapi/v1/prompt-styles."""
        return asdict(self)


def merge_prompts(style_prompt: str, prompt: str) -> str:
    """`prompt` with one style's text applied: into `{prompt}` when the style has it, else appended."""
    if PLACEHOLDER in style_prompt:
        return style_prompt.replace(PLACEHOLDER, prompt)
    return ", ".join(part for part in (prompt.strip(), style_prompt.strip()) if part)


class StyleDatabase:
    """The styles in one CSV file (which need not exist yet: then there are none)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._signature: tuple[int, int] | None = None  # (size, mtime) of the file last read
        self._styles: dict[str, PromptStyle] = {}

    def styles(self) -> list[PromptStyle]:
        """All styles in file order."""
        with self._lock:
            return list(self._current().values())

    def names(self) -> list[str]:
        return [style.name for style in self.styles()]

    def get(self, name: str) -> PromptStyle:
        with self._lock:
            styles = self._current()
        if name not in styles:
            known = ", ".join(styles) or "none saved"
            raise InvalidParameter(f"unknown style {name!r}; styles: {known}")
        return styles[name]

    def apply(self, prompt: str, negative_prompt: str, names: Sequence[str]) -> tuple[str, str]:
        """(prompt, negative prompt) with the named styles applied in order; unknown names are refused."""
        for style in [self.get(name) for name in names]:
            prompt = merge_prompts(style.prompt, prompt)
            negative_prompt = merge_prompts(style.negative_prompt, negative_prompt)
        return prompt, negative_prompt

    def save(self, style: PromptStyle) -> None:
        """Add `style`, or replace the style of the same name in its place."""
        name = style.name.strip()
        if not name:
            raise InvalidParameter("a style needs a name")
        with self._lock:
            styles = dict(self._current())
            styles[name] = PromptStyle(name, style.prompt, style.negative_prompt)
            self._write(styles)

    def delete(self, name: str) -> None:
        with self._lock:
            styles = dict(self._current())
            if styles.pop(name, None) is None:
                raise InvalidParameter(f"unknown style {name!r}; styles: {', '.join(styles) or 'none saved'}")
            self._write(styles)

    def _current(self) -> dict[str, PromptStyle]:
        """The styles as the file now holds them (read again only when its size or mtime changed)."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._signature, self._styles = None, {}
            return self._styles
        signature = (stat.st_size, stat.st_mtime_ns)
        if signature != self._signature:
            self._styles, self._signature = self._read(), signature
        return self._styles

    def _read(self) -> dict[str, PromptStyle]:
        try:
            text = self.path.read_text(encoding=_ENCODING)
        except (OSError, UnicodeDecodeError) as error:
            raise UserError(f"cannot read styles file {self.path}: {error}") from None
        reader = csv.DictReader(io.StringIO(text))
        if reader.fieldnames is None:
            return {}
        if "name" not in reader.fieldnames:
            raise UserError(f"styles file {self.path} has no 'name' column (columns: {', '.join(FIELDS)})")
        styles: dict[str, PromptStyle] = {}
        for row in reader:
            name = (row.get("name") or "").strip()
            if name:
                styles[name] = PromptStyle(name, row.get("prompt") or "", row.get("negative_prompt") or "")
        return styles

    def _write(self, styles: dict[str, PromptStyle]) -> None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(style.as_dict() for style in styles.values())
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temp = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex}.tmp")
        try:
            with open(temp, "w", encoding=_ENCODING, newline="") as handle:
                handle.write(buffer.getvalue())
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, self.path)
        finally:
            temp.unlink(missing_ok=True)
        stat = self.path.stat()
        self._styles, self._signature = styles, (stat.st_size, stat.st_mtime_ns)
