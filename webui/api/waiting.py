"""Waiting for a queued job from an async route without holding a worker thread.

A route that ran `job.wait` in the threadpool kept one of its (40) threads for as long as the job waited
in the queue; with 40 requests waiting, every other sync route (progress, interrupt, skip) queued behind
them. Here the waiting is an asyncio event set from the job worker's thread, and the request's client is
watched meanwhile: when it disconnects the job is cancelled (dropped from the queue, or interrupted).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
from fastapi import Request

from webui.services.job import Job, ShuttingDown
from webui.services.jobs import JobQueue

# How often a waiting route checks whether its client is still connected.
DISCONNECT_POLL_S = 0.5
# Threads that prepare requests and encode answers at once. Few: with dozens of threads busy in Python,
# the event loop waits for the GIL behind all of them and the control routes slow down (measured: a 50
# request burst delayed /progress by 1.7 s with the 40 threads of the default pool).
PREPARE_THREADS = 2
log = logging.getLogger(__name__)
T = TypeVar("T")


async def off_loop(request: Request, work: Callable[..., T], *args: Any) -> T:
    """`work(*args)` on one of PREPARE_THREADS threads (the CPU-bound parts of a request: decoding,
    checking, queueing, encoding), so the event loop stays free."""
    state = request.app.state
    limiter = getattr(state, "prepare_limiter", None)
    if limiter is None:  # made on first use: a limiter belongs to the running event loop
        limiter = state.prepare_limiter = anyio.CapacityLimiter(PREPARE_THREADS)
    return await anyio.to_thread.run_sync(functools.partial(work, *args), limiter=limiter)


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
