"""The informational and utility routes of A1111's /sdapi/v1: png-info, embeddings, prompt-styles,
cmd-flags and memory (Extras and upscalers: extras_routes). Shapes follow A1111 1.10."""

from __future__ import annotations

import os
from types import MappingProxyType
from typing import Any

from fastapi import APIRouter
from PIL import Image
from pydantic import BaseModel

from webui.api.deps import ServicesDep
from webui.api.models import decode_image
from webui.core import infotext
from webui.services.outputs import read_infotext
from webui.services.styles import PromptStyle

# Image.info keys A1111's PNG Info leaves out of `items` (format details, not user metadata).
_IGNORED_INFO_KEYS = frozenset(
    {
        "parameters",
        "jfif",
        "jfif_version",
        "jfif_unit",
        "jfif_density",
        "dpi",
        "exif",
        "loop",
        "background",
        "timestamp",
        "duration",
        "progressive",
        "progression",
        "icc_profile",
        "chromaticity",
        "photoshop",
    }
)
# What A1111's infotext reader fills in when a key is absent (so clients see the values it would use).
_A1111_DEFAULTS = MappingProxyType(
    {
        "Clip skip": "1",
        "Hires resize-1": 0,
        "Hires resize-2": 0,
        "Hires sampler": "Use same sampler",
        "Hires checkpoint": "Use same checkpoint",
        "Hires prompt": "",
        "Hires negative prompt": "",
        "Mask mode": "Inpaint masked",
        "Masked content": "original",
        "Inpaint area": "Whole picture",
        "Masked area padding": 32,
        "RNG": "GPU",
        "Schedule type": "Automatic",
        "Schedule max sigma": 0,
        "Schedule min sigma": 0,
        "Schedule rho": 0,
        "VAE Encoder": "Full",
        "VAE Decoder": "Full",
        "FP8 weight": "Disable",
    }
)
_SECRET_FLAGS = ("gradio_auth", "api_auth")


class ImageRequest(BaseModel):
    image: str = ""


class StyleRequest(BaseModel):
    name: str
    prompt: str = ""
    negative_prompt: str = ""


def png_info_parameters(text: str) -> dict[str, Any]:
    """The `parameters` of A1111's png-info: the infotext's fields as written (strings), WxH values split
    into key-1/key-2, and A1111's defaults for absent keys."""
    fields: dict[str, Any] = {}
    for key, value in infotext.parse(text).items():
        width, sep, height = value.partition("x")
        if key not in ("Prompt", "Negative prompt") and sep and width.isdigit() and height.isdigit():
            fields[f"{key}-1"], fields[f"{key}-2"] = width, height
        else:
            fields[key] = value
    for key, value in _A1111_DEFAULTS.items():
        fields.setdefault(key, value)
    return fields


def _info_items(image: Image.Image) -> dict[str, Any]:
    return {
        key: value
        for key, value in image.info.items()
        if isinstance(key, str) and key not in _IGNORED_INFO_KEYS and isinstance(value, (str, int, float))
    }


def memory_report() -> dict[str, Any]:
    """A1111's /memory: this process's RAM (used = its RSS) and, when there is one, the CUDA device."""
    try:
        import psutil

        process = psutil.Process(os.getpid())
        rss = process.memory_info().rss
        total = psutil.virtual_memory().total
        ram: dict[str, Any] = {"free": total - rss, "used": rss, "total": total}
    except (ImportError, OSError) as error:  # the route reports what it could not measure instead of failing
        ram = {"error": str(error)}
    try:
        import torch

        if not torch.cuda.is_available():
            return {"ram": ram, "cuda": {"error": "unavailable"}}
        free, total = torch.cuda.mem_get_info()
        stats = torch.cuda.memory_stats()

        def pair(name: str) -> dict[str, int]:
            return {"current": stats.get(f"{name}.all.current", 0), "peak": stats.get(f"{name}.all.peak", 0)}

        cuda = {
            "system": {"free": free, "used": total - free, "total": total},
            "active": pair("active_bytes"),
            "allocated": pair("allocated_bytes"),
            "reserved": pair("reserved_bytes"),
            "inactive": pair("inactive_split_bytes"),
            "events": {"retries": stats.get("num_alloc_retries", 0), "oom": stats.get("num_ooms", 0)},
        }
    except (ImportError, RuntimeError) as error:  # torch's CUDA errors are RuntimeErrors
        cuda = {"error": str(error)}
    return {"ram": ram, "cuda": cuda}


router = APIRouter(prefix="/sdapi/v1")


@router.post("/png-info")
def png_info(body: ImageRequest) -> dict[str, Any]:
    if not body.image.strip():
        return {"info": "", "items": {}, "parameters": {}}
    image = decode_image(body.image, "image")
    text = read_infotext(image) or ""
    return {
        "info": text,
        "items": _info_items(image),
        "parameters": png_info_parameters(text) if text else {},
    }


@router.get("/embeddings")
def embeddings(services: ServicesDep) -> dict[str, dict[str, Any]]:
    everything, usable = services.models.embeddings()

    def item(name: str) -> dict[str, Any]:
        vectors = next(iter(everything[name].vectors.values()))
        return {
            "step": None,
            "sd_checkpoint": None,
            "sd_checkpoint_name": None,
            "shape": int(vectors.shape[1]),
            "vectors": int(vectors.shape[0]),
        }

    return {
        "loaded": {name: item(name) for name in everything if name in usable},
        "skipped": {name: item(name) for name in everything if name not in usable},
    }


@router.get("/prompt-styles")
def prompt_styles(services: ServicesDep) -> list[dict[str, str]]:
    return [style.as_dict() for style in services.styles.styles()]


@router.post("/prompt-styles")
def save_style(body: StyleRequest, services: ServicesDep) -> dict[str, str]:
    """Our extension: add or replace a style (A1111 only lists them)."""
    services.styles.save(PromptStyle(body.name, body.prompt, body.negative_prompt))
    return services.styles.get(body.name.strip()).as_dict()


@router.delete("/prompt-styles/{name}")
def delete_style(name: str, services: ServicesDep) -> None:
    """Our extension: remove a style."""
    services.styles.delete(name)


@router.get("/cmd-flags")
def cmd_flags(services: ServicesDep) -> dict[str, Any]:
    flags = dict(vars(services.args))
    for key in _SECRET_FLAGS:  # A1111 lists passwords here; we do not
        if flags.get(key):
            flags[key] = "<hidden>"
    return flags


@router.get("/memory")
def memory() -> dict[str, Any]:
    return memory_report()
