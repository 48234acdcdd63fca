"""The generation workers (--workers / --ray-address, docs/scaling.md) and their state, lost ones too."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from webui.api.deps import ServicesDep

router = APIRouter()


@router.get("/sdapi/v1/workers")
def workers(services: ServicesDep) -> list[dict[str, Any]]:
    """Each worker's name, state (starting, ready, lost), host, device, loaded checkpoint, images made in
    this server run, and why it was lost; [] when generation runs in the server's own process."""
    pool = services.generation.workers
    return pool.status() if pool is not None else []
