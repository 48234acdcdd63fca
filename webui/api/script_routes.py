"""A1111's script and extension routes: /sdapi/v1/scripts, /sdapi/v1/script-info, /sdapi/v1/extensions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import FastAPI

from webui.plugins.registry import KINDS

if TYPE_CHECKING:
    from webui.app import App


def register_script_routes(web: FastAPI, app: App) -> None:
    plugins = app.plugins

    @web.get("/sdapi/v1/scripts")
    def scripts() -> dict[str, list[str]]:
        """Selectable and always-on script names (titles in lower case) of each tab."""
        runners = {kind: plugins.runner(kind) for kind in KINDS}
        return {
            kind: [runner.title(loaded).lower() for loaded in runner.all] for kind, runner in runners.items()
        }

    @web.get("/sdapi/v1/script-info")
    def script_info() -> list[dict[str, Any]]:
        """Each script of each tab with its arguments (label, default value, range, choices) in order."""
        return [info for kind in KINDS for info in plugins.script_info(kind)]

    @web.get("/sdapi/v1/extensions")
    def extensions() -> list[dict[str, Any]]:
        rows = []
        for extension in plugins.extensions:
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
