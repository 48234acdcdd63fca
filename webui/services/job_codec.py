"""Queued generation requests as JSON and back, so the durable queue (services/queue_store.py) can keep
them across restarts.

Every dataclass field is written: the schema's declared fields as their plain values, and the plain
fields (scripts' values, ControlNet units, input images, mask) through a small tagged encoding that keeps
tuples tuples and images pixels (PNG, or TIFF for modes PNG cannot hold; base64)."""

from __future__ import annotations

import base64
import dataclasses
import io
import json
from typing import Any

from PIL import Image

from webui.core.control_unit import ControlUnit
from webui.core.params import GenerationParams, Img2Img, Txt2Img
from webui.core.requests import Request
from webui.services.generation import OverriddenRequest

# Which classes a stored job may name; anything else in a stored row is refused, never imported by name.
_PARAMS_TYPES: dict[str, type[GenerationParams]] = {"Txt2Img": Txt2Img, "Img2Img": Img2Img}


class CodecError(ValueError):
    """A request that cannot be stored, or a stored one that cannot be read back."""


def persistable(request: Any) -> bool:
    """Whether the durable queue keeps this request (generations do; switches and previews stay in memory)."""
    if isinstance(request, OverriddenRequest):
        return persistable(request.request)
    return isinstance(request, Request) and type(request.params).__name__ in _PARAMS_TYPES


def dumps(request: Any) -> str:
    """A generation request (Request, or OverriddenRequest around one) as a JSON text."""
    if isinstance(request, OverriddenRequest):
        inner = _request_dict(request.request)
        body = {"overridden": {"options": _encode(request.options), "restore": request.restore}, **inner}
    else:
        body = _request_dict(request)
    return json.dumps(body)


def loads(text: str) -> Any:
    """The request `dumps` wrote."""
    try:
        body = json.loads(text)
        cls = _PARAMS_TYPES[body["type"]]
        values = {name: _decode(value) for name, value in body["params"].items()}
        known = {item.name for item in dataclasses.fields(cls)}
        params = cls(**{name: value for name, value in values.items() if name in known})
        request = Request(params=params, save_images=bool(body["save_images"]))
        if "overridden" not in body:
            return request
        extra = body["overridden"]
        return OverriddenRequest(request, _decode(extra["options"]), bool(extra["restore"]))
    except (KeyError, TypeError, ValueError) as error:
        raise CodecError(f"a stored job's parameters cannot be read: {error}") from error


def _request_dict(request: Request) -> dict[str, Any]:
    params = request.params
    name = type(params).__name__
    if name not in _PARAMS_TYPES:
        raise CodecError(f"{name} jobs are not stored")
    values = {item.name: _encode(getattr(params, item.name)) for item in dataclasses.fields(params)}
    return {"type": name, "save_images": request.save_images, "params": values}


PNG_MODES = frozenset({"1", "L", "LA", "I", "I;16", "P", "RGB", "RGBA"})


def _encode(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Image.Image):
        # PNG stores the usual modes; CMYK, LAB, YCbCr and the like only a TIFF keeps, losslessly
        fmt = "png" if value.mode in PNG_MODES else "tiff"
        buffer = io.BytesIO()
        value.save(buffer, fmt.upper())
        return {fmt: base64.b64encode(buffer.getvalue()).decode("ascii")}
    if isinstance(value, ControlUnit):
        return {"control_unit": {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}}
    if isinstance(value, tuple):
        return {"tuple": [_encode(item) for item in value]}
    if isinstance(value, list):
        return [_encode(item) for item in value]
    if isinstance(value, dict):
        return {"dict": [[_encode(key), _encode(item)] for key, item in value.items()]}
    raise CodecError(f"a {type(value).__name__} value cannot be stored with a queued job")


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(item) for item in value]
    if not isinstance(value, dict):
        return value
    ((tag, body),) = value.items()
    if tag in ("png", "tiff"):
        image = Image.open(io.BytesIO(base64.b64decode(body)))
        image.load()
        return image
    if tag == "control_unit":
        return ControlUnit(**{name: _decode(item) for name, item in body.items()})
    if tag == "tuple":
        return tuple(_decode(item) for item in body)
    if tag == "dict":
        return {_decode(key): _decode(item) for key, item in body}
    raise CodecError(f"unknown stored value tag {tag!r}")
