"""The /sdapi/v1 routes. They translate A1111 payloads to params and call the services; no generation here."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from webui.api import (
    controlnet_routes,
    extras_routes,
    info_routes,
    queue_routes,
    script_routes,
    worker_routes,
)
from webui.api.deps import STATE_KEY, ServicesDep
from webui.api.models import Img2ImgRequest, Txt2ImgRequest, params_for
from webui.api.shapes import (
    base64_image,
    checkpoint_items,
    info_dict,
    sampler_item,
    schedule_item,
    vae_items,
)
from webui.api.waiting import client_id, off_loop, wait_for_job
from webui.core import samplers
from webui.core.errors import UserError
from webui.core.params import LATENT_UPSCALE_MODES, GenerationParams
from webui.core.requests import Result
from webui.services.container import Services
from webui.services.job import Job

router = APIRouter(prefix="/sdapi/v1")


def register_api(web: FastAPI, services: Services) -> None:
    """Add A1111's API routes and error handlers to the FastAPI app."""
    setattr(web.state, STATE_KEY, services)

    @web.exception_handler(UserError)
    async def user_error(_: Request, error: UserError) -> JSONResponse:
        return JSONResponse(
            status_code=error.status_code, content={"error": type(error).__name__, "detail": str(error)}
        )

    @web.exception_handler(RequestValidationError)
    async def invalid_body(_: Request, error: RequestValidationError) -> JSONResponse:
        reasons = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        return JSONResponse(status_code=422, content={"error": "InvalidParameter", "detail": reasons})

    for routes in (router, info_routes.router, script_routes.router, controlnet_routes.router):
        web.include_router(routes)
    web.include_router(extras_routes.router)
    web.include_router(queue_routes.router)
    web.include_router(worker_routes.router)


async def _generate(
    services: Services,
    body: Txt2ImgRequest,
    params: GenerationParams,
    parameters: dict[str, Any],
    request: Request,
) -> dict[str, Any]:
    """Queue `params` as `body` asks, wait (without a thread; cancelled if the client goes away), and
    answer as A1111 does (`parameters` echo the request's known fields, never unknown ones). Checking,
    queueing and encoding run on the threadpool, briefly each: the event loop stays free for the control
    routes even when many requests arrive at once."""
    generation = services.generation

    def queue() -> Job:
        styled = generation.apply_styles(params, body.styles)
        return generation.submit(
            styled,
            body.save_images,
            body.override_settings,
            body.override_settings_restore_afterwards,
            owner=client_id(request),
            job_id=(body.model_extra or {}).get("force_task_id") or None,  # A1111's id for /internal/progress
        )

    job = await off_loop(request, queue)
    result: Result = await wait_for_job(job, services.jobs, request)

    def answer() -> dict[str, Any]:
        for unknown in body.model_extra or {}:
            parameters.pop(unknown, None)
        images = [base64_image(image, text) for image, text in zip(result.images, result.infotexts)]
        return {
            "images": images if body.send_images else [],
            "parameters": parameters,
            "info": json.dumps(info_dict(result, body.styles)),
        }

    return await off_loop(request, answer)


@router.post("/txt2img")
async def txt2img(body: Txt2ImgRequest, services: ServicesDep, request: Request) -> dict[str, Any]:
    params = await off_loop(request, params_for, body, services)
    return await _generate(services, body, params, body.model_dump(), request)


@router.post("/img2img")
async def img2img(body: Img2ImgRequest, services: ServicesDep, request: Request) -> dict[str, Any]:
    # decoding the images takes a while for big ones: off the event loop
    params = await off_loop(request, params_for, body, services)
    return await _generate(services, body, params, body.echo(), request)


@router.get("/sd-models")
def sd_models(services: ServicesDep) -> list[dict[str, Any]]:
    return checkpoint_items(services.models)


@router.post("/refresh-checkpoints")
def refresh_checkpoints(services: ServicesDep) -> None:
    services.models.refresh_checkpoints()


@router.get("/sd-vae")
def sd_vae(services: ServicesDep) -> list[dict[str, str]]:
    return vae_items(services.models)


@router.post("/refresh-vae")
def refresh_vae(services: ServicesDep) -> None:
    services.models.refresh_vaes()


@router.get("/loras")
def loras(services: ServicesDep) -> list[dict[str, Any]]:
    library = services.models.loras
    entries = library.entries if library is not None else []
    return [{"name": e.name, "alias": e.name, "path": str(e.path), "metadata": {}} for e in entries]


@router.post("/refresh-loras")
def refresh_loras(services: ServicesDep) -> None:
    services.models.refresh_loras()


@router.get("/samplers")
def sampler_list() -> list[dict[str, Any]]:
    return [sampler_item(sampler) for sampler in samplers.SAMPLERS]


@router.get("/schedulers")
def scheduler_list() -> list[dict[str, Any]]:
    return [schedule_item(schedule) for schedule in samplers.SCHEDULE_TYPES]


@router.get("/latent-upscale-modes")
def latent_upscale_modes() -> list[dict[str, Any]]:
    """Hires fix's latent upscalers, as A1111 lists them."""
    return [{"name": name} for name in LATENT_UPSCALE_MODES]


@router.get("/options")
def get_options(services: ServicesDep) -> dict[str, Any]:
    options = services.settings.as_dict()
    options["sd_model_checkpoint"] = services.models.current_title()
    return options


@router.post("/options")
def set_options(body: dict[str, Any], services: ServicesDep) -> None:
    services.models.update_options(body)


# The control routes are async: they only read or flag the queue, and must answer at once even when
# every threadpool thread is busy.
@router.get("/progress")
async def progress(services: ServicesDep, skip_current_image: bool = False) -> dict[str, Any]:
    view = services.jobs.progress()
    preview = view.current_preview
    return {
        "progress": view.progress,
        "eta_relative": view.eta_relative,
        "state": view.state,
        "current_image": base64_image(preview, "")
        if preview is not None and not skip_current_image
        else None,
        "textinfo": None,
    }


@router.post("/interrupt")
async def interrupt(services: ServicesDep) -> None:
    services.jobs.interrupt()


@router.post("/skip")
async def skip(services: ServicesDep) -> None:
    services.jobs.skip()
