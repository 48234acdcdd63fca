"""A1111's (and sd-webui-controlnet's) JSON shapes for what the services return: the API's answers are
built here, not in the objects they describe."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

from webui import __version__
from webui.core.params import Img2Img
from webui.core.requests import Result
from webui.core.samplers import Sampler, ScheduleType
from webui.services.models import ModelsService
from webui.services.outputs import embed_infotext
from webui.services.upscalers import UpscalerInfo


def base64_image(image: Any, infotext: str) -> str:
    """PNG with the infotext embedded, as A1111's API returns images."""
    return base64.b64encode(embed_infotext(image, infotext, "png")).decode("ascii")


def sampler_item(sampler: Sampler) -> dict[str, Any]:
    """As A1111's /sdapi/v1/samplers lists one (with its default schedule type)."""
    return {"name": sampler.name, "aliases": list(sampler.aliases), "options": sampler.options}


def schedule_item(schedule: ScheduleType) -> dict[str, Any]:
    """As A1111's /sdapi/v1/schedulers lists one."""
    return {"name": schedule.name, "label": schedule.label, "aliases": list(schedule.aliases) or None}


def checkpoint_items(models: ModelsService) -> list[dict[str, Any]]:
    """/sdapi/v1/sd-models: hashes only once known (hashing every file would take minutes)."""
    registry = models.registry
    return [
        {
            "title": registry.title(entry),
            "model_name": entry.model_name,
            "hash": registry.known_short_hash(entry),
            "sha256": registry.known_sha256(entry),
            "filename": str(entry.path),
            "config": None,
        }
        for entry in models.checkpoints()
    ]


def vae_items(models: ModelsService) -> list[dict[str, str]]:
    """/sdapi/v1/sd-vae: [{"model_name": file name, "filename": full path}]."""
    return [{"model_name": name, "filename": str(path)} for name, path in models.vae_files()]


def preprocessor_sliders(pre: Any) -> list[dict[str, Any] | None]:
    """sd-webui-controlnet's module_detail "sliders" (None for a hidden resolution slider)."""
    shown = [pre.resolution, pre.threshold_a, pre.threshold_b]
    while shown and shown[-1] is None:
        shown.pop()
    return [
        None
        if s is None
        else {"name": s.label, "value": s.default, "min": s.minimum, "max": s.maximum, "step": s.step}
        for s in shown
    ]


def info_dict(result: Result, styles: Sequence[str] = ()) -> dict[str, Any]:
    """The `info` JSON of A1111's txt2img response (the fields its clients read). The model is the one
    the result says made it, not whatever is loaded when the answer is written."""
    p = result.params
    first = result.index_of_first_image  # a batch grid before it has no seed of its own, as A1111
    seeds, subseeds = result.seeds[first:], result.subseeds[first:]
    return {
        "prompt": p.prompt,
        "all_prompts": [p.prompt] * len(seeds),
        "negative_prompt": p.negative_prompt,
        "all_negative_prompts": [p.negative_prompt] * len(seeds),
        "seed": p.seed,
        "all_seeds": list(seeds),
        "subseed": subseeds[0] if subseeds else p.subseed,
        "all_subseeds": list(subseeds),
        "subseed_strength": p.subseed_strength,
        "seed_resize_from_w": p.seed_resize_from_w,
        "seed_resize_from_h": p.seed_resize_from_h,
        "width": p.width,
        "height": p.height,
        "sampler_name": p.sampler_name,
        "scheduler": p.scheduler,
        "cfg_scale": p.cfg_scale,
        "cfg_rescale": p.cfg_rescale,
        "denoising_strength": p.denoising_strength if isinstance(p, Img2Img) else None,
        "steps": p.steps,
        "batch_size": p.batch_size,
        "n_iter": p.n_iter,
        "restore_faces": False,
        "sd_model_name": result.sd_model_name,
        "sd_model_hash": result.sd_model_hash,
        "sd_vae_name": result.sd_vae_name,
        "sd_vae_hash": result.sd_vae_hash,
        "clip_skip": p.clip_skip,
        "index_of_first_image": first,
        "infotexts": list(result.infotexts),
        "styles": list(styles),
        "interrupted": result.interrupted,
        "images_saved": list(result.paths),
        "warnings": list(result.warnings),
        "version": __version__,
    }


def upscaler_item(info: UpscalerInfo) -> dict[str, Any]:
    """As A1111's /sdapi/v1/upscalers lists one (model_name: the architecture; None for plain resizers)."""
    return {
        "name": info.name,
        "model_name": info.model_name,
        "model_path": info.model_path,
        "model_url": info.model_url,
        "scale": info.scale,
    }
