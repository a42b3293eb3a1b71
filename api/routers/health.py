"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse

from api.container import Container
from api.deps import Services
from api.problems import responses
from api.routing import ThreadedRoute
from api.schemas import Health, Ready

router = APIRouter(tags=["health"], route_class=ThreadedRoute)


@router.get("/healthz", response_model=Health)
def healthz() -> dict[str, Any]:
    return {"status": "ok"}


def positions(services: Container) -> tuple[int, int]:
    """The store's last position and the views' position."""
    store = services.app.last_position()
    return store, services.views.position() if services.views is not None else store


@router.get("/readyz", response_model=Ready, responses=responses(503))
async def readyz(services: Services) -> Any:
    # two indexed reads, where reads run best: on the event loop with the embedded store,
    # so that a probe is not queued behind the requests waiting for the thread pool
    from api.problems import problem

    try:
        store, view = await services.read(positions, services)
    except Exception as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        return problem(503, f"store or views unreachable: {first}", headers={"Retry-After": "5"})
    body = {"status": "ready", "store_position": store, "view_position": view, "lag": store - view}
    return JSONResponse(body)


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus metrics"}},
)
def metrics(services: Services) -> PlainTextResponse:
    store = services.app.last_position()
    view = services.views.position() if services.views is not None else store
    text = services.metrics.exposition(
        {
            "prepmeet_events_recorded": ("Events in the store (its last position).", store),
            "prepmeet_view_position": ("The position the views reflect.", view),
            "prepmeet_projection_lag_events": ("Events not yet in the views.", store - view),
        }
    )
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")
