"""A1111's script and extension routes: /sdapi/v1/scripts, /sdapi/v1/script-info, /sdapi/v1/extensions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from webui.api.deps import ServicesDep
from webui.plugins.registry import KINDS

router = APIRouter(prefix="/sdapi/v1")


@router.get("/scripts")
def scripts(services: ServicesDep) -> dict[str, list[str]]:
    """Selectable and always-on script names (titles in lower case) of each tab."""
    runners = {kind: services.plugins.runner(kind) for kind in KINDS}
    return {kind: [runner.title(loaded).lower() for loaded in runner.all] for kind, runner in runners.items()}


@router.get("/script-info")
def script_info(services: ServicesDep) -> list[dict[str, Any]]:
    """Each script of each tab with its arguments (label, default value, range, choices) in order."""
    return [info for kind in KINDS for info in services.plugins.script_info(kind)]


@router.get("/extensions")
def extensions(services: ServicesDep) -> list[dict[str, Any]]:
    rows = []
    for extension in services.plugins.extensions:
        git = extension.git_info()
        rows.append(
            {
                "name": extension.name,
                "remote": git.remote,
                "branch": git.branch,
                "commit_hash": git.commit_hash,
                "version": git.version,
                "commit_date": git.commit_date,
                "enabled": extension.enabled,
            }
        )
    return rows
