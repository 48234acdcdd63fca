"""What scripts see of a generation: `p` (Processing, a mutable view of the frozen params) and the
Processed result, shaped like A1111's objects so its extension idioms carry over."""

from __future__ import annotations

import copy
import dataclasses
import random
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from PIL import Image

from webui.core.params import MAX_SEED, GenerationParams, Img2Img
from webui.core.prompts import strip_comments
from webui.core.requests import Result

if TYPE_CHECKING:
    from webui.plugins.flow import JobRun

InfotextValue = str | int | float | bool


class Processing:
    """A1111's `p`: every params field reads and writes as an attribute (p.prompt = "…" replaces the
    frozen params), plus `extra_generation_params` (a dict written into the infotext), `is_img2img`,
    `sd_model` (the loaded checkpoint) and `params` (the frozen params, extras included).

    Other attributes a script sets are kept on this object only (handy to pass state between hooks)."""

    def __init__(self, params: GenerationParams, run: JobRun | None = None) -> None:
        self.__dict__["_params"] = params
        self.__dict__["_run"] = run
        self.__dict__["extra_generation_params"] = dict(params.extra_generation_params)

    def __getattr__(self, name: str) -> Any:  # only called when normal lookup fails: the params fields
        params = self.__dict__.get("_params")
        if params is not None and name in _field_names(params):
            return getattr(params, name)
        if params is not None and _A1111_ALIASES.get(name) in _field_names(params):
            return getattr(params, _A1111_ALIASES[name])
        if params is not None and name in _PER_IMAGE:
            self.__dict__[name] = _PER_IMAGE[name](self)  # made once; a script's changes apply per batch
            return self.__dict__[name]
        if name in _A1111_DEFAULTS:  # a fresh copy kept on p: scripts add to these lists and dicts
            self.__dict__[name] = copy.copy(_A1111_DEFAULTS[name])
            return self.__dict__[name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _field_names(self._params) and name != "extra_generation_params":
            self.__dict__["_params"] = dataclasses.replace(self._params, **{name: value})
        else:
            object.__setattr__(self, name, value)

    @property
    def params(self) -> GenerationParams:
        """The params as they are now, with extra_generation_params put in (validated at generation)."""
        return dataclasses.replace(
            self._params, extra_generation_params=infotext_items(self.extra_generation_params)
        )

    @params.setter
    def params(self, params: GenerationParams) -> None:
        self.__dict__["_params"] = params
        self.__dict__["extra_generation_params"] = dict(params.extra_generation_params)

    @property
    def is_img2img(self) -> bool:
        return isinstance(self._params, Img2Img)

    @property
    def sd_model(self) -> Any:
        """The loaded checkpoint (engine LoadedCheckpoint: .pipe is the diffusers pipeline), or None."""
        run = self.__dict__["_run"]
        return run.current_model() if run is not None else None

    def copy(self) -> Processing:
        """An independent p with the same params (A1111 scripts use copy(p) for each variation)."""
        twin = Processing(self.params, self.__dict__["_run"])
        for name, value in self.__dict__.items():
            if name not in ("_params", "_run", "extra_generation_params"):
                twin.__dict__[name] = value
        return twin

    __copy__ = copy


def _fixed_seeds(p: Processing) -> list[int]:
    """A1111 resolves a random seed before the scripts run, so every image's seed is known to them."""
    if p.seed == -1:
        p.seed = random.randrange(MAX_SEED + 1)
    total = p.n_iter * p.batch_size
    return [p.seed + (i if p.subseed_strength == 0 else 0) for i in range(total)]


def _repeat(field: str, fallback: str = "") -> Any:
    return lambda p: [getattr(p, field, "") or getattr(p, fallback, "")] * (p.n_iter * p.batch_size)


# A1111's per-image lists (process() may rewrite them; flow.PluginHooks applies each batch's first entry).
_PER_IMAGE = {
    "all_prompts": _repeat("prompt"),
    "all_negative_prompts": _repeat("negative_prompt"),
    "all_hr_prompts": _repeat("hr_prompt", "prompt"),
    "all_hr_negative_prompts": _repeat("hr_negative_prompt", "negative_prompt"),
    "all_seeds": _fixed_seeds,
    "all_subseeds": lambda p: [p.subseed] * (p.n_iter * p.batch_size),
}
_A1111_ALIASES = {"image_mask": "mask"}
# A1111 attributes we have no params for: read as A1111's defaults (scripts may set them on p).
_A1111_DEFAULTS: dict[str, Any] = {
    "override_settings": {}, "scripts": None, "restore_faces": False, "tiling": False, "styles": [],
    "iteration": 0, "batch_index": 0, "is_hr_pass": False, "do_not_save_samples": False,
    "do_not_save_grid": False, "outpath_samples": "", "outpath_grids": "", "init_images": [],
    "image_mask": None, "enable_hr": False, "denoising_strength": 0.0, "hr_prompt": "",
    "hr_negative_prompt": "", "comments": {}, "cached_c": [None, None], "cached_uc": [None, None],
}  # fmt: skip


def infotext_items(extra: Mapping[str, Any]) -> tuple[tuple[str, InfotextValue], ...]:
    """Extension-supplied infotext entries as plain data: None dropped, other non-scalar values as text."""
    items = []
    for key, value in extra.items():
        if value is None:
            continue
        items.append((str(key), value if isinstance(value, (str, int, float, bool)) else str(value)))
    return tuple(items)


def _field_names(params: GenerationParams) -> frozenset[str]:
    return frozenset(field.name for field in dataclasses.fields(params))


def strip_prompt_comments(p: Processing) -> None:
    """p's prompts (hires ones too) without their # comments, as A1111 1.8's "Comments" script does
    before the other scripts' process(): the infotext then holds the prompts as generated."""
    for name in ("prompt", "negative_prompt", "hr_prompt", "hr_negative_prompt"):
        if hasattr(p.params, name):
            setattr(p, name, strip_comments(getattr(p.params, name)))


class Processed:
    """A1111's Processed: the images of one generation (or of a script's run) with their infotexts and
    seeds, index-aligned; `paths` are the files saved, `warnings` what the user should be told, `params`
    those the engine used (seed resolved) when it came from one generation."""

    def __init__(
        self,
        p: Processing,
        images: Sequence[Image.Image],
        seed: int = -1,
        info: str = "",
        *,
        infotexts: Sequence[str] | None = None,
        seeds: Sequence[int] | None = None,
        subseeds: Sequence[int] = (),
        paths: Sequence[str] = (),
        warnings: Sequence[str] = (),
        interrupted: bool = False,
        params: GenerationParams | None = None,
        index_of_first_image: int = 0,
    ) -> None:
        self.p = p
        self.params = params
        self.images = list(images)
        self.infotexts = list(infotexts) if infotexts is not None else [info] * len(self.images)
        self.seeds = list(seeds) if seeds is not None else [seed] * len(self.images)
        self.subseeds = list(subseeds)  # each image's variation seed, when the engine made them
        self.paths = list(paths)
        self.warnings = list(warnings)
        self.interrupted = interrupted
        self.index_of_first_image = index_of_first_image  # the images before it are grids (A1111's)

    @property
    def info(self) -> str:
        return self.infotexts[0] if self.infotexts else ""

    @property
    def seed(self) -> int:
        return self.seeds[0] if self.seeds else self.p.seed

    @property
    def all_seeds(self) -> list[int]:
        return list(self.seeds)

    @property
    def prompt(self) -> str:
        return self.p.prompt

    @classmethod
    def from_result(cls, p: Processing, result: Result) -> Processed:
        return cls(
            p,
            result.images,
            infotexts=result.infotexts,
            seeds=result.seeds,
            subseeds=result.subseeds,
            paths=result.paths,
            warnings=result.warnings,
            interrupted=result.interrupted,
            params=result.params,
            index_of_first_image=result.index_of_first_image,
        )

    def to_result(self, params: GenerationParams) -> Result:
        seeds = self.seeds + [self.seed] * (len(self.images) - len(self.seeds))  # a script may omit some
        infotexts = self.infotexts + [self.info] * (len(self.images) - len(self.infotexts))
        return Result(
            params=params,
            images=tuple(self.images),
            infotexts=tuple(infotexts[: len(self.images)]),
            seeds=tuple(seeds[: len(self.images)]),
            subseeds=tuple(self.subseeds) if len(self.subseeds) == len(self.images) else (),
            paths=tuple(self.paths),
            interrupted=self.interrupted,
            warnings=tuple(dict.fromkeys(self.warnings)),
            index_of_first_image=self.index_of_first_image,
        )
