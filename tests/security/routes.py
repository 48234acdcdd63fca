"""The server's route table, flattened: FastAPI keeps included routers as one entry each (their routes
inside), so a test that must see every route walks into them."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any


def flat_routes(routes: Iterable[Any]) -> Iterator[Any]:
    """Every route of `routes`, the routes of included routers in their place (their paths are full:
    our routers carry their prefix themselves)."""
    for route in routes:
        inner = getattr(route, "original_router", None)  # FastAPI's entry for an included router
        if inner is not None:
            yield from flat_routes(inner.routes)
        else:
            yield route
