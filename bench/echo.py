"""The framework ceiling: a minimal FastAPI app with echo endpoints of both kinds.

``POST /echo/def`` and ``POST /echo/async`` parse a JSON body (as a route with a body model
does) and answer a JSON object of ``?size=`` bytes that carries the body back, so an echo
can take the same body and give the same response size as the route it stands in for.
``def`` runs in the thread pool like prepmeet's routes; ``async def`` runs on the loop.

Served by ``uvicorn bench.echo:app`` with the settings ``prepmeet serve`` uses.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import Body, FastAPI, Query, Response

app = FastAPI(title="bench-echo", docs_url=None, redoc_url=None, openapi_url=None)

Payload = Annotated[dict[str, Any], Body()]
Size = Annotated[int, Query(ge=0, le=1_000_000)]


def _echo(body: dict[str, Any], size: int) -> Response:
    raw = json.dumps({"echo": body, "pad": ""}, separators=(",", ":"))
    pad = max(0, size - len(raw.encode()))
    out = json.dumps({"echo": body, "pad": "x" * pad}, separators=(",", ":"))
    return Response(out, media_type="application/json")


@app.post("/echo/def")
def echo_def(body: Payload, size: Size = 0) -> Response:
    return _echo(body, size)


@app.post("/echo/async")
async def echo_async(body: Payload, size: Size = 0) -> Response:
    return _echo(body, size)


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}
