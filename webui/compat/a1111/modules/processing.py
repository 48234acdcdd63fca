"""modules.processing: A1111's p classes, process_images, Processed, fix_seed and create_infotext.

The `p` scripts get is our webui.plugins Processing, which carries A1111's attribute names (all_prompts,
all_seeds, extra_generation_params, init_images, image_mask, …); StableDiffusionProcessingTxt2Img /
Img2Img answer isinstance() for it by tab, and calling them builds one from A1111's keyword names.
"""

from __future__ import annotations

import dataclasses
import json
import random
from typing import Any

from webui.core import infotext
from webui.core.params import MAX_SEED, GenerationParams, Img2Img, Txt2Img
from webui.plugins import processing as _ours
from webui.plugins.api import process_images
from webui.plugins.processing import Processing

__all__ = ["process_images"]


class Processed(_ours.Processed):
    """A1111's Processed(p, images_list, seed, info, subseed, all_prompts, …, all_seeds, infotexts)."""

    def __init__(
        self,
        p: Processing,
        images_list: list[Any],
        seed: int = -1,
        info: str = "",
        subseed: int | None = None,
        all_prompts: list[str] | None = None,
        all_negative_prompts: list[str] | None = None,
        all_seeds: list[int] | None = None,
        all_subseeds: list[int] | None = None,
        index_of_first_image: int = 0,
        infotexts: list[str] | None = None,
        comments: str = "",
        extra_images_list: list[Any] | None = None,
    ) -> None:
        seeds = all_seeds if all_seeds is not None else [seed if seed != -1 else p.seed] * len(images_list)
        super().__init__(p, images_list, seed, info, infotexts=infotexts, seeds=seeds)
        self.subseed = subseed if subseed is not None else p.subseed
        self.all_prompts = all_prompts or [p.prompt] * len(images_list)
        self.all_negative_prompts = all_negative_prompts or [p.negative_prompt] * len(images_list)
        self.all_subseeds = all_subseeds or [self.subseed] * len(images_list)
        self.index_of_first_image = index_of_first_image
        self.comments = comments
        self.extra_images = list(extra_images_list or [])

    def js(self) -> str:
        return json.dumps({"seed": self.seed, "all_seeds": self.all_seeds, "infotexts": self.infotexts})


class _PMeta(type):
    params_type: type[GenerationParams] | None = None

    def __instancecheck__(cls, instance: Any) -> bool:
        if not isinstance(instance, Processing):
            return False
        return cls.params_type is None or isinstance(instance.params, cls.params_type)

    def __call__(cls, **kwargs: Any) -> Processing:
        kind = cls.params_type or Txt2Img
        known = {field.name for field in dataclasses.fields(kind)}
        if "image_mask" in kwargs:
            kwargs["mask"] = kwargs.pop("image_mask")
        if "init_images" in kwargs:
            kwargs["init_images"] = tuple(kwargs["init_images"] or ())
        p = Processing(kind(**{key: value for key, value in kwargs.items() if key in known}))
        for key, value in kwargs.items():
            if key not in known:
                setattr(p, key, value)
        return p


class StableDiffusionProcessing(metaclass=_PMeta):
    """isinstance(p, StableDiffusionProcessing): any p of ours."""


class StableDiffusionProcessingTxt2Img(StableDiffusionProcessing):
    params_type = Txt2Img


class StableDiffusionProcessingImg2Img(StableDiffusionProcessing):
    params_type = Img2Img


def get_fixed_seed(seed: int | None) -> int:
    if seed is None or seed == "" or int(seed) == -1:
        return random.randrange(MAX_SEED + 1)
    return int(seed)


def fix_seed(p: Processing) -> None:
    p.seed = get_fixed_seed(p.seed)
    p.subseed = get_fixed_seed(p.subseed)


def create_infotext(
    p: Processing,
    all_prompts: list[str] | None = None,
    all_seeds: list[int] | None = None,
    all_subseeds: list[int] | None = None,
    comments: Any = None,
    iteration: int = 0,
    position_in_batch: int = 0,
    use_main_prompt: bool = False,
    index: int | None = None,
    all_negative_prompts: list[str] | None = None,
) -> str:
    """The infotext of image `index` of p (its prompt and seed from the lists), extra_generation_params
    included, as A1111 writes it (without the model name and hash, which only the generation knows)."""
    index = position_in_batch + iteration * p.batch_size if index is None else index
    prompts, seeds = all_prompts or p.all_prompts, all_seeds or p.all_seeds
    params = p.params.replace(prompt=p.prompt if use_main_prompt else prompts[index])
    if all_negative_prompts:
        params = params.replace(negative_prompt=all_negative_prompts[index])
    return infotext.build(params, seed=seeds[index], extra=dict(p.extra_generation_params))
