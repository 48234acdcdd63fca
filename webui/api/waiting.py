"""Waiting for a queued job from an async route without holding a worker thread.

A route that ran `job.wait` in the threadpool kept one of its (40) threads for as long as the job waited
in the queue; with 40 requests waiting, every other sync route (progress, interrupt, skip) queued behind
them. Here the waiting is an asyncio event set from the job worker's thread, and the request's client is
watched meanwhile: when it disconnects the job is cancelled (dropped from the queue, or interrupted).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import Request

from webui.services.jobs import Job, JobQueue, ShuttingDown

# How often a waiting route checks whether its client is still connected.
DISCONNECT_POLL_S = 0.5
log = logging.getLogger(__name__)


def client_id(request: Request) -> str:
    """Who owns a job for the per-client queue limit: the authenticated API user, else the address."""
    user = request.scope.get("api_user")
    if user:
        return f"user:{user}"
    return f"address:{request.client.host if request.client else 'unknown'}"


async def wait_for_job(job: Job, jobs: JobQueue, request: Request | None = None) -> Any:
    """The job's result (or its error raised), awaited on the event loop; cancels the job when the
    client of `request` goes away first; ShuttingDown when the server stops before the job ran."""
    loop = asyncio.get_running_loop()
    changed = asyncio.Event()

    def wake() -> None:
        try:
            loop.call_soon_threadsafe(changed.set)
        except RuntimeError:  # the loop is closed: the server has stopped, nobody waits any more
            log.debug("job %s finished after its event loop closed", job.id)

    job.add_listener(wake)
    while not job.done:
        if jobs.closed and job is not jobs.current():
            raise ShuttingDown("The server is shutting down; the job stays queued and was not run")
        try:
            await asyncio.wait_for(changed.wait(), DISCONNECT_POLL_S)
        except TimeoutError:
            if request is not None and await request.is_disconnected():
                log.info("client of %s disconnected: job cancelled", job)
                jobs.cancel(job)
        changed.clear()
    return job.wait(0)
