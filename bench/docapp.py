"""The document ceiling: the real service plus one route that serves fixed bytes.

``uvicorn --factory bench.docapp:create_app`` builds prepmeet's own app (``api.main``) from
the same settings and adds ``/__bench__/bytes/{name}``: ``PUT`` stores a body in memory
(``?append=true`` adds to it: the service's body limit applies to this route too), ``GET``
serves it back (a ``def`` route, like the download route, through the same
middleware). Serving a downloaded document's bytes this way is what the download route
could do at best in the same process.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, HTTPException, Request, Response

from api.main import create_app as create_service

PREFIX = "/__bench__/bytes"


def create_app() -> FastAPI:
    app = create_service()
    stored: dict[str, tuple[bytes, str]] = {}

    async def put_bytes(name: str, request: Request, append: bool = False) -> dict[str, Any]:
        body = await request.body()
        if append and name in stored:
            body = stored[name][0] + body
        stored[name] = (body, request.headers.get("content-type", "application/octet-stream"))
        return {"name": name, "bytes": len(body)}

    def get_bytes(name: str) -> Response:
        try:
            body, media_type = stored[name]
        except KeyError:
            raise HTTPException(404, f"nothing stored as {name}") from None
        return Response(body, media_type=media_type)

    app.add_api_route(f"{PREFIX}/{{name}}", put_bytes, methods=["PUT"], include_in_schema=False)
    app.add_api_route(f"{PREFIX}/{{name}}", get_bytes, methods=["GET"], include_in_schema=False)
    return app
