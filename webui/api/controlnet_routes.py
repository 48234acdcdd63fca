"""sd-webui-controlnet's API: its units in txt2img/img2img `alwayson_scripts`, and its /controlnet routes
(model_list, module_list, detect). Field names and shapes as sd-webui-controlnet accepts and answers."""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from webui.api.deps import ServicesDep
from webui.api.models import decode_image
from webui.api.shapes import preprocessor_sliders
from webui.api.waiting import client_id, off_loop, wait_for_job
from webui.core.control_unit import ControlUnit, control_mode_name, control_resize_mode_name
from webui.core.errors import InvalidParameter
from webui.services.controlnet import ControlNetService, Preprocess

ALWAYSON_KEY = "controlnet"  # the alwayson_scripts title, in any case
# sd-webui-controlnet's older names for fields
_COMPAT_KEYS = {"input_image": "image", "guidance": "guidance_end", "lowvram": "low_vram"}
# fields that ask for something this version cannot do: refused instead of ignored
_UNSUPPORTED = ("mask", "mask_image", "effective_region_mask", "ipadapter_input")
_CONVERT: dict[str, Callable[[Any], Any]] = {
    "enabled": bool,
    "module": str,
    "model": str,
    "weight": float,
    "processor_res": int,
    "threshold_a": float,
    "threshold_b": float,
    "guidance_start": float,
    "guidance_end": float,
    "pixel_perfect": bool,
    "resize_mode": control_resize_mode_name,
    "control_mode": control_mode_name,
}


def _image(value: Any, where: str) -> Any:
    """A unit's image: base64 (data URL allowed), or sd-webui-controlnet's {"image": …, "mask": …}."""
    if isinstance(value, dict):
        if value.get("mask"):
            raise InvalidParameter(f"{where}.mask: masks for ControlNet units are not supported yet")
        value = value.get("image")
    if not value:
        return None
    if not isinstance(value, str):
        raise InvalidParameter(f"{where}: expected a base64 image, got {type(value).__name__}")
    return decode_image(value, where)


def unit_from_dict(data: dict[str, Any], where: str) -> ControlUnit:
    """One unit from sd-webui-controlnet's API dict. Without an image, img2img uses its input image."""
    values: dict[str, Any] = {}
    for key, value in data.items():
        key = _COMPAT_KEYS.get(key, key)
        if key in _UNSUPPORTED and value:
            raise InvalidParameter(f"{where}.{key}: not supported yet")
        if key == "image":
            values["image"] = _image(value, f"{where}.image")
        elif key in _CONVERT and value is not None:
            try:
                values[key] = _CONVERT[key](value)
            except (TypeError, ValueError, InvalidParameter) as error:
                raise InvalidParameter(f"{where}.{key}: {error}") from None
    values.setdefault("image", None)
    return ControlUnit(use_img2img_input=values["image"] is None, **values)


def units_from_alwayson(alwayson_scripts: dict[str, Any]) -> tuple[ControlUnit, ...]:
    """The units of {"ControlNet": {"args": [unit, …]}} (title in any case); () when there is none.
    A `null` unit is a disabled one (it keeps the others' numbers)."""
    entries = [(title, v) for title, v in alwayson_scripts.items() if title.strip().lower() == ALWAYSON_KEY]
    if not entries:
        return ()
    title, entry = entries[0]
    args = entry.get("args") if isinstance(entry, dict) else None
    if not isinstance(args, list):
        raise InvalidParameter(
            f'alwayson_scripts[{title!r}] must look like {{"args": [unit, …]}}, got {entry!r}'
        )
    units = []
    for index, unit in enumerate(args):
        where = f"alwayson_scripts.{title}.args[{index}]"
        if unit is None:
            units.append(ControlUnit(enabled=False))
        elif isinstance(unit, dict):
            units.append(unit_from_dict(unit, where))
        else:
            raise InvalidParameter(f"{where}: expected an object with the unit's fields, got {unit!r}")
    return tuple(units)


class DetectRequest(BaseModel):
    """sd-webui-controlnet's /controlnet/detect body. -1: the preprocessor's own default (its slider)."""

    controlnet_module: str = "none"
    controlnet_input_images: list[str] = Field(default_factory=list)
    controlnet_processor_res: int = 512
    controlnet_threshold_a: float = -1
    controlnet_threshold_b: float = -1


def _png_base64(image: Any) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


router = APIRouter(prefix="/controlnet")


@router.get("/model_list")
def model_list(services: ServicesDep, update: bool = True) -> dict[str, list[str]]:
    controlnet = services.controlnet
    return {"model_list": controlnet.refresh() if update else controlnet.titles()}


@router.get("/module_list")
def module_list(alias_names: bool = False) -> dict[str, Any]:
    detail = {
        (p.label if alias_names else p.name): {"model_free": False, "sliders": preprocessor_sliders(p)}
        for p in ControlNetService.preprocessors()
    }
    return {"module_list": ControlNetService.module_list(alias_names), "module_detail": detail}


@router.post("/detect")
async def detect(body: DetectRequest, services: ServicesDep, request: Request) -> dict[str, Any]:
    """The maps, made by a queued job (never beside a running generation; Interrupt stops it). The job
    is awaited without holding a thread."""
    if not body.controlnet_input_images:
        raise InvalidParameter("controlnet_input_images is empty: send at least one base64 image")
    controlnet = services.controlnet
    controlnet.find(body.controlnet_module)  # an unknown module fails before any image is decoded

    def decode() -> tuple[Any, ...]:
        return tuple(
            decode_image(text, f"controlnet_input_images[{i}]")
            for i, text in enumerate(body.controlnet_input_images)
        )

    preprocess = Preprocess(
        body.controlnet_module,
        await off_loop(request, decode),
        body.controlnet_processor_res,
        body.controlnet_threshold_a,
        body.controlnet_threshold_b,
    )
    job = controlnet.submit(preprocess, owner=client_id(request))
    result = await wait_for_job(job, services.jobs, request)
    images = await off_loop(request, lambda: [_png_base64(image) for image in result.images])
    return {"images": images, "info": "Success"}
