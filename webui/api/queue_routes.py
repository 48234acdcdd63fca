"""The queue's own API: queue a txt2img/img2img and answer its id at once, then poll, cancel, reorder
or list your jobs; and A1111's `/internal/progress` for a `force_task_id`.

A job's owner is the --api-auth user, else the client's address (services see it as a plain string).
A client sees and manages only its own jobs; the --queue-admin user sees everybody's."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from PIL import Image
from pydantic import BaseModel

from webui.api.deps import ServicesDep
from webui.api.models import GenerationRequest, Img2ImgRequest, Txt2ImgRequest, params_for
from webui.api.shapes import base64_image, info_dict
from webui.api.waiting import client_id, off_loop
from webui.core.requests import Result
from webui.services import job_codec
from webui.services.container import Services
from webui.services.job import Job, JobStatus

router = APIRouter()


class MoveBody(BaseModel):
    by: int  # places among your waiting jobs: negative runs it sooner


class LivePreviewBody(BaseModel):
    """A1111's /internal/progress request (its web page polls with it)."""

    id_task: str
    id_live_preview: int = -1
    live_preview: bool = True


def queue_job(
    services: Services, body: GenerationRequest, parameters: dict[str, Any], request: Request
) -> Job:
    """Check and queue a generation as the synchronous route does; the job remembers what its answer
    echoes. A1111's `force_task_id` becomes the job's id."""
    params = params_for(body, services)
    generation = services.generation
    extra = body.model_extra or {}
    forced = extra.get("force_task_id")
    job = generation.submit(
        generation.apply_styles(params, body.styles),
        body.save_images,
        body.override_settings,
        body.override_settings_restore_afterwards,
        owner=client_id(request),
        job_id=str(forced) if forced else None,
    )
    for unknown in extra:
        parameters.pop(unknown, None)
    job.meta.update(parameters=parameters, styles=list(body.styles), send_images=body.send_images)
    return job


def generation_answer(job: Job) -> dict[str, Any]:
    """A finished job's `images`/`parameters`/`info`, as the synchronous route answers."""
    result: Result = job.result
    meta = job.meta  # empty for a job queued before a restart: no echo, no styles
    images = [base64_image(image, text) for image, text in zip(result.images, result.infotexts)]
    return {
        "images": images if meta.get("send_images", True) else [],
        "parameters": meta.get("parameters", {}),
        "info": json.dumps(info_dict(result, meta.get("styles", ()))),
    }


def is_admin(services: Services, request: Request) -> bool:
    admin = getattr(services.args, "queue_admin", None)
    return bool(admin) and request.scope.get("api_user") == admin


def own_job(services: Services, job_id: str, request: Request) -> Job:
    """The job, when it is the caller's (or the caller is the admin); 404 otherwise, so ids of other
    people's jobs reveal nothing."""
    job = services.jobs.find(job_id)
    if job is None or not (job.owner == client_id(request) or is_admin(services, request)):
        raise HTTPException(status_code=404, detail=f"no job {job_id} of yours in the queue")
    return job


def job_view(services: Services, job: Job, with_result: bool) -> dict[str, Any]:
    params = getattr(job.params, "request", job.params).params  # OverriddenRequest wraps a Request
    view: dict[str, Any] = {
        "id": job.id,
        "kind": job.kind,
        "owner": job.owner,
        "status": job.status.value,
        "position": services.jobs.position(job),
        "progress": job.progress().progress,
        "prompt": params.prompt,
        "created": job.created,
        "started": job.started,
        "finished": job.finished,
        "error": str(job.error) if job.error is not None and job.status is not JobStatus.DONE else None,
    }
    if with_result and job.status is JobStatus.DONE and isinstance(job.result, Result):
        view.update(generation_answer(job))
    return view


def history_view(services: Services, job_id: str, request: Request) -> dict[str, Any] | None:
    """A job of an earlier run, from the durable queue: its status and saved images with their
    infotexts (the images as the synchronous route encodes them); None when it is not the caller's."""
    row = services.jobs.history(job_id)
    if row is None or not (row.owner == client_id(request) or is_admin(services, request)):
        return None
    queued = job_codec.loads(row.params)
    images, infotexts = [], []
    for path, infotext in row.files:
        if Path(path).is_file():  # a file deleted since is left out, not an error
            with Image.open(path) as image:
                images.append(base64_image(image, infotext))
            infotexts.append(infotext)
    return {
        "id": row.id,
        "kind": row.kind,
        "owner": row.owner,
        "status": row.status,
        "position": None,
        "progress": row.progress,
        "prompt": getattr(queued, "request", queued).params.prompt,
        "created": row.created,
        "started": row.started,
        "finished": row.finished,
        "error": row.error,
        "images": images,
        "infotexts": infotexts,
    }


@router.post("/sdapi/v1/queue/txt2img")
async def queue_txt2img(body: Txt2ImgRequest, services: ServicesDep, request: Request) -> dict[str, str]:
    job = await off_loop(request, queue_job, services, body, body.model_dump(), request)
    return {"id": job.id}


@router.post("/sdapi/v1/queue/img2img")
async def queue_img2img(body: Img2ImgRequest, services: ServicesDep, request: Request) -> dict[str, str]:
    job = await off_loop(request, queue_job, services, body, body.echo(), request)
    return {"id": job.id}


@router.get("/sdapi/v1/queue")
async def list_jobs(services: ServicesDep, request: Request) -> list[dict[str, Any]]:
    """Your jobs (the admin: everybody's) that are queued, running or recently finished, oldest first."""
    admin, me = is_admin(services, request), client_id(request)
    mine = [job for job in services.jobs.known() if admin or job.owner == me]
    return [job_view(services, job, with_result=False) for job in mine if job.kind in ("txt2img", "img2img")]


@router.get("/sdapi/v1/queue/{job_id}")
async def get_job(job_id: str, services: ServicesDep, request: Request) -> dict[str, Any]:
    if services.jobs.find(job_id) is None:  # not in memory: a job of an earlier run?
        earlier = await off_loop(request, history_view, services, job_id, request)
        if earlier is not None:
            return earlier
    job = own_job(services, job_id, request)
    return await off_loop(request, job_view, services, job, True)  # encoding images takes a while


@router.delete("/sdapi/v1/queue/{job_id}")
async def cancel_job(job_id: str, services: ServicesDep, request: Request) -> dict[str, Any]:
    """Take a waiting job out of the queue, or interrupt it when it runs."""
    job = own_job(services, job_id, request)
    services.jobs.cancel(job, "DELETE /sdapi/v1/queue")
    return {"id": job.id, "status": job.status.value}


@router.post("/sdapi/v1/queue/{job_id}/move")
async def move_job(job_id: str, body: MoveBody, services: ServicesDep, request: Request) -> dict[str, Any]:
    job = own_job(services, job_id, request)
    if not services.jobs.move(job, body.by):
        raise HTTPException(status_code=409, detail=f"job {job_id} no longer waits ({job.status.value})")
    return {"id": job.id, "position": services.jobs.position(job)}


@router.post("/internal/progress")
async def internal_progress(body: LivePreviewBody, services: ServicesDep, request: Request) -> dict[str, Any]:
    """A1111's progress of one task by its id (force_task_id): active, queued, completed, progress,
    eta and the live preview. Unknown and other people's ids read as not started, as in A1111."""
    job = services.jobs.find(body.id_task)
    if job is not None and not (job.owner == client_id(request) or is_admin(services, request)):
        job = None
    answer: dict[str, Any] = {
        "active": False,
        "queued": False,
        "completed": False,
        "progress": None,
        "eta": None,
        "live_preview": None,
        "id_live_preview": body.id_live_preview,
        "textinfo": "Waiting...",
    }
    if job is None:
        return answer
    view = job.progress()
    running = job.status is JobStatus.RUNNING
    answer.update(
        active=running,
        queued=job.status is JobStatus.QUEUED,
        completed=job.done,
        progress=view.progress if running else (1.0 if job.done else None),
        eta=view.eta_relative if running else None,
        textinfo=None if running else ("Done" if job.done else "In queue..."),
    )
    if running and body.live_preview and view.current_preview is not None:
        answer["live_preview"] = "data:image/png;base64," + base64_image(view.current_preview, "")
        answer["id_live_preview"] = body.id_live_preview + 1
    return answer
