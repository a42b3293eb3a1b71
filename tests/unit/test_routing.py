"""The routes' class: a ``def`` endpoint in the thread pool, the rest of the request on the loop."""

from __future__ import annotations

import threading
from typing import Annotated, Any

import pytest
from fastapi import APIRouter, FastAPI, Header, Response
from fastapi import routing as fastapi_routing
from fastapi.testclient import TestClient
from pydantic import BaseModel

from api import routing
from api.routing import ThreadedRoute


class Out(BaseModel):
    id: int
    tag: str
    thread: str


def build(route_class: type[fastapi_routing.APIRoute]) -> FastAPI:
    router = APIRouter(prefix="/v1", route_class=route_class)

    @router.post("/items/{item_id}", response_model=Out, status_code=201)
    def create(
        item_id: int, response: Response, tag: Annotated[str, Header()] = "none"
    ) -> dict[str, Any]:
        response.headers["Location"] = f"/v1/items/{item_id}"
        return {"id": item_id, "tag": tag, "thread": threading.current_thread().name}

    app = FastAPI()
    app.include_router(router)
    return app


def counting(monkeypatch: pytest.MonkeyPatch, module: Any) -> list[str]:
    calls: list[str] = []
    original = module.run_in_threadpool

    async def counted(fn: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(getattr(fn, "__name__", repr(fn)))
        return await original(fn, *args, **kwargs)

    monkeypatch.setattr(module, "run_in_threadpool", counted)
    return calls


def test_a_def_endpoint_runs_in_the_pool_and_its_response_is_validated_on_the_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    by_fastapi = counting(monkeypatch, fastapi_routing)
    by_route = counting(monkeypatch, routing)
    with TestClient(build(ThreadedRoute)) as client:
        loop_thread = client.portal.call(lambda: threading.current_thread().name)  # type: ignore[union-attr]
        r = client.post("/v1/items/7", headers={"tag": "x"})
    assert r.status_code == 201
    assert r.headers["location"] == "/v1/items/7"
    assert r.json()["id"] == 7 and r.json()["tag"] == "x"
    assert r.json()["thread"] != loop_thread, "the endpoint ran in a pool thread"
    assert by_route == ["create"], "one hand-over to the pool"
    assert by_fastapi == [], "and none for validating the response"


def test_plain_routes_hand_over_twice_which_is_what_the_class_saves(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    by_fastapi = counting(monkeypatch, fastapi_routing)
    with TestClient(build(fastapi_routing.APIRoute)) as client:
        assert client.post("/v1/items/7").status_code == 201
    assert len(by_fastapi) == 2


def test_the_schema_and_the_refusals_are_those_of_the_endpoint_itself() -> None:
    threaded, plain = build(ThreadedRoute), build(fastapi_routing.APIRoute)
    assert threaded.openapi() == plain.openapi()
    with TestClient(threaded) as a, TestClient(plain) as b:
        refused_a, refused_b = a.post("/v1/items/seven"), b.post("/v1/items/seven")
    assert refused_a.status_code == refused_b.status_code == 422
    assert refused_a.json() == refused_b.json()
