"""User options persisted in config.json under A1111's option names.

OPTIONS is the one declarative table of options: the Settings tab and /sdapi/v1/options are generated
from it, and `Settings.update` validates against it.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Mapping
from dataclasses import KW_ONLY, dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from webui.core.errors import InvalidParameter, UserError
from webui.services.outputs import IMAGE_FORMATS


@dataclass(frozen=True)
class Option:
    """One option; its type is the type of its default (bool, int, float or str)."""

    name: str
    default: Any
    label: str
    section: str
    _: KW_ONLY
    choices: tuple[Any, ...] | None = None  # fixed choices; options with run-time choices leave this None
    minimum: float | None = None
    maximum: float | None = None

    @property
    def type(self) -> type:
        return type(self.default)

    def validate(self, value: Any) -> Any:
        """`value` converted to this option's type; InvalidParameter naming the option otherwise."""
        kind = self.type
        if kind is bool:
            ok = isinstance(value, bool)
        elif kind is int:
            # JSON and UI sliders may hand over 3.0 for 3.
            ok = not isinstance(value, bool) and (
                isinstance(value, int) or (isinstance(value, float) and value.is_integer())
            )
        elif kind is float:
            ok = not isinstance(value, bool) and isinstance(value, (int, float))
        else:
            ok = isinstance(value, kind)
        if not ok:
            raise InvalidParameter(f"option {self.name} must be {kind.__name__}, got {value!r}")
        value = kind(value)
        if self.choices is not None and value not in self.choices:
            valid = ", ".join(map(str, self.choices))
            raise InvalidParameter(f"option {self.name} must be one of {valid}; got {value!r}")
        if (self.minimum is not None and value < self.minimum) or (
            self.maximum is not None and value > self.maximum
        ):
            raise InvalidParameter(
                f"option {self.name} must be between {self.minimum} and {self.maximum}, got {value}"
            )
        return value


_SAVING = "Saving images/grids"
_PATHS = "Paths for saving"
_SD = "Stable Diffusion"
_PREVIEWS = "Live previews"

OPTIONS: tuple[Option, ...] = (
    Option("samples_save", True, "Always save all generated images", _SAVING),
    Option("samples_format", "png", "File format for images", _SAVING, choices=IMAGE_FORMATS),
    Option("save_txt", False, "Create a text file with infotext next to every image", _SAVING),
    Option("jpeg_quality", 80, "Quality for saved jpeg and webp images", _SAVING, minimum=1, maximum=100),
    Option("webp_lossless", False, "Use lossless compression for webp images", _SAVING),
    Option("outdir_samples", "", "Output directory for images; if empty, defaults to the two below", _PATHS),
    Option("outdir_txt2img_samples", "outputs/txt2img-images", "Output directory for txt2img images", _PATHS),
    Option("outdir_img2img_samples", "outputs/img2img-images", "Output directory for img2img images", _PATHS),
    Option("sd_model_checkpoint", "", "Stable Diffusion checkpoint", _SD),
    Option(
        "sd_checkpoints_limit",
        1,
        "Maximum number of checkpoints loaded at the same time",
        _SD,
        minimum=1,
        maximum=10,
    ),
    Option("sd_checkpoints_keep_in_cpu", True, "Only keep one model on device", _SD),
    Option("sd_checkpoint_cache", 0, "Checkpoints to cache in RAM", _SD, minimum=0, maximum=10),
    Option("sd_vae", "Automatic", "SD VAE", _SD),
    Option("CLIP_stop_at_last_layers", 1, "Clip skip", _SD, minimum=1, maximum=12),
    Option(
        "vae_tiling_threshold",
        1536,
        "Decode with tiled VAE when the image is larger than this many pixels on a side (0 = never)",
        _SD,
        minimum=0,
        maximum=16384,
    ),
    Option("live_previews_enable", True, "Show live previews of the created image", _PREVIEWS),
    Option(
        "show_progress_every_n_steps",
        10,
        "Live preview display period: every N sampling steps (-1: only at the end of each batch)",
        _PREVIEWS,
        minimum=-1,
        maximum=32,
    ),
)

OPTIONS_BY_NAME: Mapping[str, Option] = MappingProxyType({option.name: option for option in OPTIONS})
_OUTDIR_KEYS = MappingProxyType({"txt2img": "outdir_txt2img_samples", "img2img": "outdir_img2img_samples"})


def option(name: str) -> Option:
    try:
        return OPTIONS_BY_NAME[name]
    except KeyError:
        raise InvalidParameter(f"unknown option {name!r}") from None


class Settings:
    """Options loaded from `path` (defaults when it does not exist) and saved back on every update.

    Keys in the file that this program does not know (say, from an A1111 config.json) are kept as they
    are when saving, but are not options here.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._unknown: dict[str, Any] = {}
        self._values = {o.name: o.default for o in OPTIONS}
        if self.path.exists():
            self._load()

    def _load(self) -> None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise UserError(f"cannot read settings file {self.path}: {exc}") from exc
        if not isinstance(data, dict):
            raise UserError(f"settings file {self.path} must hold a JSON object, not {type(data).__name__}")
        for name, value in data.items():
            if name not in OPTIONS_BY_NAME:
                self._unknown[name] = value
                continue
            try:
                self._values[name] = OPTIONS_BY_NAME[name].validate(value)
            except InvalidParameter as exc:
                raise UserError(f"settings file {self.path}: {exc}") from exc

    def get(self, name: str) -> Any:
        option(name)
        with self._lock:
            return self._values[name]

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._values)

    def update(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Validate all of `changes`, then apply and save them together; return those that changed value.

        Nothing is applied when any change is invalid or the file cannot be written.
        """
        validated = {name: option(name).validate(value) for name, value in changes.items()}
        with self._lock:
            changed = {name: value for name, value in validated.items() if self._values[name] != value}
            if changed:
                values = {**self._values, **changed}
                self._save({**self._unknown, **values})
                self._values = values
            return changed

    def output_dir(self, kind: str) -> str:
        """Folder for `kind` images: outdir_samples when set (A1111's rule), else the kind's own folder."""
        if kind not in _OUTDIR_KEYS:
            raise InvalidParameter(f"no output folder for {kind!r}; kinds: {', '.join(_OUTDIR_KEYS)}")
        with self._lock:
            return self._values["outdir_samples"] or self._values[_OUTDIR_KEYS[kind]]

    def _save(self, data: dict[str, Any]) -> None:
        """Write via a temporary file in the same folder, so config.json is always whole."""
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
