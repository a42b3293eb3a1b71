"""Liveness and readiness."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse

from api.deps import Services
from api.problems import responses
from api.schemas import Health, Ready

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
def healthz() -> dict[str, Any]:
    return {"status": "ok"}


@router.get("/readyz", response_model=Ready, responses=responses(503))
def readyz(services: Services) -> Any:
    from api.problems import problem

    try:
        store = services.app.last_position()
        view = services.views.position() if services.views is not None else store
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
