"""A1111's Extras and upscaler routes: extra-single-image, extra-batch-images, upscalers,
latent-upscale-modes, face-restorers, realesrgan-models. The Extras work runs as a queued job."""

from __future__ import annotations

import base64
import html
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from webui.api.deps import ServicesDep
from webui.api.models import decode_image
from webui.api.shapes import upscaler_item
from webui.services.container import Services
from webui.services.extras import ExtrasRequest, ExtrasResult, FaceRestoration, encode_with_chunks
from webui.services.upscalers import LATENT_UPSCALE_MODES, ExtrasResize, list_upscalers

router = APIRouter(prefix="/sdapi/v1")

_UNIT = {"ge": 0, "le": 1, "allow_inf_nan": False}


class ExtrasBaseRequest(BaseModel):
    """A1111's ExtrasBaseRequest (upscaling_resize may go below 1 here: plain downscaling works).
    `save_images` is ours: A1111's API never saves; true saves to outputs/extras-images."""

    resize_mode: Literal[0, 1] = 0
    show_extras_results: bool = True
    gfpgan_visibility: float = Field(default=0, **_UNIT)  # type: ignore[arg-type]
    codeformer_visibility: float = Field(default=0, **_UNIT)  # type: ignore[arg-type]
    codeformer_weight: float = Field(default=0, **_UNIT)  # type: ignore[arg-type]
    upscaling_resize: float = Field(default=2, allow_inf_nan=False)
    upscaling_resize_w: int = Field(default=512, ge=1)
    upscaling_resize_h: int = Field(default=512, ge=1)
    upscaling_crop: bool = True
    upscaler_1: str = "None"
    upscaler_2: str = "None"
    extras_upscaler_2_visibility: float = Field(default=0, **_UNIT)  # type: ignore[arg-type]
    upscale_first: bool = False
    save_images: bool = False

    def request(self, images: tuple[Any, ...], names: tuple[str, ...] = ()) -> ExtrasRequest:
        return ExtrasRequest(
            sources=images,
            names=names,
            resize=ExtrasResize(
                resize_mode=self.resize_mode,
                scale=self.upscaling_resize,
                width=self.upscaling_resize_w,
                height=self.upscaling_resize_h,
                crop=self.upscaling_crop,
                upscaler_1=self.upscaler_1,
                upscaler_2=self.upscaler_2,
                upscaler_2_visibility=self.extras_upscaler_2_visibility,
            ),
            faces=FaceRestoration(self.gfpgan_visibility, self.codeformer_visibility, self.codeformer_weight),
            upscale_first=self.upscale_first,
            save=self.save_images,
        )


class ExtrasSingleImageRequest(ExtrasBaseRequest):
    image: str = ""


class FileData(BaseModel):
    data: str
    name: str


class ExtrasBatchImagesRequest(ExtrasBaseRequest):
    imageList: list[FileData]  # noqa: N815 (A1111's field name)


def _png(image: Any) -> str:
    """PNG as base64 with the image's text chunks (the input's infotext, "postprocessing"), as A1111."""
    return base64.b64encode(encode_with_chunks(image, dict(image.info))).decode("ascii")


def _html(text: str) -> str:
    return f"<p>{html.escape(text)}</p>"


async def _run(services: Services, request: ExtrasRequest) -> ExtrasResult:
    job = services.extras.submit(request)
    result: ExtrasResult = await run_in_threadpool(job.wait)
    return result


@router.post("/extra-single-image")
async def extra_single_image(body: ExtrasSingleImageRequest, services: ServicesDep) -> dict[str, str]:
    image = await run_in_threadpool(decode_image, body.image, "image")
    result = await _run(services, body.request((image,)))
    return {"html_info": _html(result.infotext), "image": _png(result.images[0]) if result.images else ""}


@router.post("/extra-batch-images")
async def extra_batch_images(body: ExtrasBatchImagesRequest, services: ServicesDep) -> dict[str, Any]:
    def decode_all() -> tuple[Any, ...]:
        return tuple(decode_image(item.data, f"imageList[{i}]") for i, item in enumerate(body.imageList))

    images = await run_in_threadpool(decode_all)
    names = tuple(item.name.rsplit(".", 1)[0] for item in body.imageList)
    result = await _run(services, body.request(images, names))
    return {"html_info": _html(result.infotext), "images": [_png(image) for image in result.images]}


@router.get("/upscalers")
def upscalers(services: ServicesDep) -> list[dict[str, Any]]:
    return [upscaler_item(info) for info in list_upscalers(services.extras.catalog)]


@router.get("/latent-upscale-modes")
def latent_upscale_modes() -> list[dict[str, str]]:
    return [{"name": name} for name in LATENT_UPSCALE_MODES]


@router.get("/face-restorers")
def face_restorers(services: ServicesDep) -> list[dict[str, str | None]]:
    faces = services.extras.faces
    if faces is None:
        return []
    return [{"name": name, "cmd_dir": str(folder)} for name, folder in faces.folders().items()]


@router.get("/realesrgan-models")
def realesrgan_models(services: ServicesDep) -> list[dict[str, Any]]:
    """The model upscalers found in the RealESRGAN folder (A1111 lists its download list here)."""
    return [
        {"name": model.name, "path": str(model.path), "scale": model.scale}
        for model in services.extras.catalog.in_folder("RealESRGAN")
    ]
