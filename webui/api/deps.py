"""The routes' dependency: the services the App put on the FastAPI app's state."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from webui.services.container import Services

STATE_KEY = "services"


def get_services(request: Request) -> Services:
    return getattr(request.app.state, STATE_KEY)


ServicesDep = Annotated[Services, Depends(get_services)]
