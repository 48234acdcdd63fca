"""User options persisted in config.json under A1111's option names.

What the options are is the table in services/option_table.py (OPTIONS); this module keeps their values:
loading and repairing config.json, validated updates, per-job overrides, extensions' own options.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from webui.core.errors import InvalidParameter
from webui.services.option_table import OPTIONS, OPTIONS_BY_NAME, OUTDIR_KEYS, Option, option

log = logging.getLogger(__name__)

# A temporary file of _save that lived this long was left by a killed process (a write takes milliseconds).
STALE_TEMP_AGE_S = 60.0


class Settings:
    """Options loaded from `path` (defaults when it does not exist) and saved back on every update.

    Keys in the file that this program does not know (say, from an A1111 config.json) are kept as they
    are when saving, but are not options here. A damaged file never stops the start: it is moved aside
    (config.json.bad-<time>), the options it cannot give keep their defaults, and `load_warning` says so.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._unknown: dict[str, Any] = {}
        self._values = {o.name: o.default for o in OPTIONS}
        self._overrides: dict[str, Any] = {}  # for one generation (see `overridden`); never saved
        self._extension_options: dict[str, Option] = {}  # added by extensions (on_ui_settings)
        self._load_warning: str | None = None
        self._remove_stale_temp_files()
        if self.path.exists():
            self._load()

    @property
    def load_warning(self) -> str | None:
        """What was wrong with the settings file at start (one sentence for the user), else None."""
        return self._load_warning

    def _load(self) -> None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            self._set_aside(f"it cannot be read as JSON ({exc})", repaired=False)
            return
        if not isinstance(data, dict):
            self._set_aside(f"it holds a JSON {type(data).__name__}, not an object", repaired=False)
            return
        problems = []
        for name, value in data.items():
            if name not in OPTIONS_BY_NAME:
                self._unknown[name] = value
                continue
            try:
                self._values[name] = OPTIONS_BY_NAME[name].validate(value)
            except InvalidParameter as exc:
                problems.append(str(exc))
        if problems:
            self._set_aside("; ".join(problems), repaired=True)

    def _set_aside(self, problem: str, repaired: bool) -> None:
        """Keep the damaged file as config.json.bad-<time>; when `repaired`, write the options that were
        valid (and the unknown keys) back, so the next start is clean and the warning comes once."""
        kept = self.path.with_name(f"{self.path.name}.bad-{time.strftime('%Y%m%d-%H%M%S')}")
        while kept.exists():  # two damaged files within a second
            kept = kept.with_name(f"{kept.name}-{uuid.uuid4().hex[:6]}")
        outcome = "the other options were read" if repaired else "started with default settings"
        try:
            os.replace(self.path, kept)
            if repaired:
                self._save({**self._unknown, **self._values})
            where = f"the damaged file is kept as {kept.name}"
        except OSError as exc:
            where = f"it could not be set aside ({exc})"
        self._load_warning = f"settings file {self.path} was damaged: {problem}; {outcome}; {where}"
        log.warning("%s", self._load_warning)

    def _remove_stale_temp_files(self) -> None:
        """Remove the temporary files of writes that a kill interrupted (ours only: .config.json.<hex>.tmp),
        leaving young ones: another process may be writing."""
        pattern = re.compile(rf"\.{re.escape(self.path.name)}\.[0-9a-f]{{32}}\.tmp")
        try:
            candidates = [entry for entry in self.path.parent.iterdir() if pattern.fullmatch(entry.name)]
        except OSError:
            return  # no folder yet: nothing to clean
        for entry in candidates:
            try:
                if time.time() - entry.stat().st_mtime > STALE_TEMP_AGE_S:
                    entry.unlink()
            except OSError as exc:  # gone meanwhile, or not ours to remove
                log.warning("could not remove stale settings file %s: %s", entry, exc)

    def option(self, name: str) -> Option:
        """The option `name`: one of OPTIONS or one an extension added."""
        with self._lock:
            added = self._extension_options.get(name)
        return added if added is not None else option(name)

    @property
    def options(self) -> tuple[Option, ...]:
        """Every option, OPTIONS first, then those extensions added (for the Settings tab)."""
        with self._lock:
            return (*OPTIONS, *self._extension_options.values())

    def add_option(self, new: Option) -> None:
        """An extension's option (A1111's opts.add_option): its value comes from the file when the file
        has a valid one, else the default."""
        with self._lock:
            if new.name in OPTIONS_BY_NAME or new.name in self._extension_options:
                raise InvalidParameter(f"option {new.name!r} already exists")
            value = new.default
            if new.name in self._unknown:
                try:
                    value = new.validate(self._unknown[new.name])
                    del self._unknown[new.name]
                except InvalidParameter:
                    pass  # keep the file's value untouched until the user sets a valid one
            self._extension_options[new.name] = new
            self._values[new.name] = value

    def get(self, name: str) -> Any:
        self.option(name)
        with self._lock:
            return self._overrides[name] if name in self._overrides else self._values[name]

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            return {**self._values, **self._overrides}

    @contextmanager
    def overridden(self, changes: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        """Options set in memory for the `with` block only, then put back (A1111's override_settings with
        override_settings_restore_afterwards); validated first, never written to the file."""
        validated = {name: self.option(name).validate(value) for name, value in changes.items()}
        with self._lock:
            before, self._overrides = self._overrides, {**self._overrides, **validated}
        try:
            yield validated
        finally:
            with self._lock:
                self._overrides = before

    def update(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Validate all of `changes`, then apply and save them together; return those that changed value.

        Nothing is applied when any change is invalid or the file cannot be written.
        """
        validated = {name: self.option(name).validate(value) for name, value in changes.items()}
        with self._lock:
            changed = {name: value for name, value in validated.items() if self._values[name] != value}
            if changed:
                values = {**self._values, **changed}
                self._save({**self._unknown, **values})
                self._values = values
            return changed

    def output_dir(self, kind: str) -> str:
        """Folder for `kind` images ("txt2img", "img2img", "txt2img-grids", "img2img-grids"):
        outdir_samples (outdir_grids for grids) when set (A1111's rule), else the kind's own folder."""
        if kind not in OUTDIR_KEYS:
            raise InvalidParameter(f"no output folder for {kind!r}; kinds: {', '.join(OUTDIR_KEYS)}")
        values = self.as_dict()
        general = "outdir_grids" if kind.endswith("-grids") else "outdir_samples"
        return str(values[general] or values[OUTDIR_KEYS[kind]])

    def _save(self, data: dict[str, Any]) -> None:
        """Write via a temporary file in the same folder, so config.json is always whole (os.replace is
        atomic; a kill leaves at most a temporary file, removed at the next start)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temp = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex}.tmp")
        try:
            with open(temp, "w", encoding="utf-8") as handle:
                json.dump(data, handle, indent=4, ensure_ascii=False)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, self.path)
        finally:
            temp.unlink(missing_ok=True)
