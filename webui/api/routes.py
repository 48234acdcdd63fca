"""The /sdapi/v1 routes. They translate A1111 payloads to params and call the App; no generation here."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from webui import __version__
from webui.api.controlnet_routes import register_controlnet_routes
from webui.api.info_routes import register_info_routes
from webui.api.models import Img2ImgRequest, Txt2ImgRequest
from webui.api.script_routes import register_script_routes
from webui.core import samplers
from webui.core.errors import UserError
from webui.core.params import GenerationParams, Img2Img, Result
from webui.services.outputs import embed_infotext

if TYPE_CHECKING:
    from webui.app import App


def register_api(web: FastAPI, app: App) -> None:
    """Add A1111's API routes and error handlers to the FastAPI app."""

    @web.exception_handler(UserError)
    async def user_error(_: Request, error: UserError) -> JSONResponse:
        return JSONResponse(
            status_code=error.status_code, content={"error": type(error).__name__, "detail": str(error)}
        )

    @web.exception_handler(RequestValidationError)
    async def invalid_body(_: Request, error: RequestValidationError) -> JSONResponse:
        reasons = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        return JSONResponse(status_code=422, content={"error": "InvalidParameter", "detail": reasons})

    async def generate(
        body: Txt2ImgRequest, params: GenerationParams, parameters: dict[str, Any]
    ) -> dict[str, Any]:
        """Queue `params` as `body` asks, wait, and answer as A1111 does (`parameters` echo the request)."""
        params = app.apply_styles(params, body.styles)
        job = app.submit(
            params, body.save_images, body.override_settings, body.override_settings_restore_afterwards
        )
        result: Result = await run_in_threadpool(job.wait)
        images = [base64_image(image, text) for image, text in zip(result.images, result.infotexts)]
        return {
            "images": images if body.send_images else [],
            "parameters": parameters,
            "info": json.dumps(info_dict(result, app, body.styles)),
        }

    @web.post("/sdapi/v1/txt2img")
    async def txt2img(body: Txt2ImgRequest) -> dict[str, Any]:
        params = body.to_params(default_clip_skip=app.settings.get("CLIP_stop_at_last_layers"))
        return await generate(body, params, body.model_dump())

    @web.post("/sdapi/v1/img2img")
    async def img2img(body: Img2ImgRequest) -> dict[str, Any]:
        # decoding the images takes a while for big ones: off the event loop
        params = await run_in_threadpool(body.to_params, app.settings.get("CLIP_stop_at_last_layers"))
        return await generate(body, params, body.echo())

    @web.get("/sdapi/v1/sd-models")
    def sd_models() -> list[dict[str, Any]]:
        return [
            {
                "title": app.registry.title(entry),
                "model_name": entry.model_name,
                "hash": app.registry.known_short_hash(entry),
                "sha256": app.registry.known_sha256(entry),
                "filename": str(entry.path),
                "config": None,
            }
            for entry in app.registry.entries
        ]

    @web.post("/sdapi/v1/refresh-checkpoints")
    def refresh_checkpoints() -> None:
        app.refresh_checkpoints()

    @web.get("/sdapi/v1/sd-vae")
    def sd_vae() -> list[dict[str, str]]:
        return app.manager.vaes.api_list()

    @web.post("/sdapi/v1/refresh-vae")
    def refresh_vae() -> None:
        app.manager.vaes.refresh()

    @web.get("/sdapi/v1/loras")
    def loras() -> list[dict[str, Any]]:
        library = app.manager.loras
        return [
            {"name": e.name, "alias": e.name, "path": str(e.path), "metadata": {}} for e in library.entries
        ]

    @web.post("/sdapi/v1/refresh-loras")
    def refresh_loras() -> None:
        app.manager.loras.refresh()

    @web.get("/sdapi/v1/samplers")
    def sampler_list() -> list[dict[str, Any]]:
        return [sampler.api_item() for sampler in samplers.SAMPLERS]

    @web.get("/sdapi/v1/schedulers")
    def scheduler_list() -> list[dict[str, Any]]:
        return [schedule.api_item() for schedule in samplers.SCHEDULE_TYPES]

    @web.get("/sdapi/v1/options")
    def get_options() -> dict[str, Any]:
        options = app.settings.as_dict()
        options["sd_model_checkpoint"] = app.current_checkpoint_title()
        return options

    @web.post("/sdapi/v1/options")
    def set_options(body: dict[str, Any]) -> None:
        app.update_options(body)

    @web.get("/sdapi/v1/progress")
    def progress(skip_current_image: bool = False) -> dict[str, Any]:
        view = app.jobs.progress()
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

    @web.post("/sdapi/v1/interrupt")
    def interrupt() -> None:
        app.jobs.interrupt()

    @web.post("/sdapi/v1/skip")
    def skip() -> None:
        app.jobs.skip()

    register_info_routes(web, app)
    register_script_routes(web, app)
    register_controlnet_routes(web, app)


def base64_image(image: Any, infotext: str) -> str:
    """PNG with the infotext embedded, as A1111's API returns images."""
    return base64.b64encode(embed_infotext(image, infotext, "png")).decode("ascii")


def info_dict(result: Result, app: App, styles: Sequence[str] = ()) -> dict[str, Any]:
    """The `info` JSON of A1111's txt2img response (the fields its clients read)."""
    p = result.params
    loaded = app.manager.current
    return {
        "prompt": p.prompt,
        "all_prompts": [p.prompt] * len(result.seeds),
        "negative_prompt": p.negative_prompt,
        "all_negative_prompts": [p.negative_prompt] * len(result.seeds),
        "seed": p.seed,
        "all_seeds": list(result.seeds),
        "subseed": -1,
        "all_subseeds": [-1] * len(result.seeds),
        "subseed_strength": 0,
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
        "sd_model_name": app.manager.entry_for(loaded).model_name if loaded else None,
        "sd_model_hash": app.manager.short_hash(loaded) if loaded else None,
        "clip_skip": p.clip_skip,
        "index_of_first_image": 0,
        "infotexts": list(result.infotexts),
        "styles": list(styles),
        "interrupted": result.interrupted,
        "images_saved": list(result.paths),
        "warnings": list(result.warnings),
        "version": __version__,
    }
