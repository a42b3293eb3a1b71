"""The event feed, as pages and as a live Server-Sent Events stream."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.deps import App, CurrentUser, Services
from api.errors import HttpProblem
from api.pagination import Limit
from api.problems import responses
from api.routing import ThreadedRoute
from api.schemas import EventOut, Page
from domain.errors import Forbidden, InvalidInput
from domain.users import User

router = APIRouter(prefix="/api/v1/events", tags=["events"], route_class=ThreadedRoute)

POSITION_MAX = 2**63 - 1
"""The largest position the store can hold (a signed 64-bit integer)."""
Since = Annotated[
    int, Query(ge=0, le=POSITION_MAX, description="events whose position is greater than this")
]
POLL_SECONDS = 0.2
KEEPALIVE_SECONDS = 15.0


def require_feed_reader(user: User) -> None:
    if not (user.secretariat or user.ministerial):
        raise Forbidden("the event feed is for the secretariat and the ministerial team")


async def feed_reader(user: CurrentUser) -> None:
    """The role check, as a dependency so that it answers before the query is validated."""
    require_feed_reader(user)


def position(value: str, name: str) -> int:
    if not (value.isascii() and value.isdigit()) or int(value) > POSITION_MAX:
        raise InvalidInput(f"{name} must be a position", name)
    return int(value)


@router.get(
    "",
    response_model=Page[EventOut],
    responses=responses(401, 403, 422),
    dependencies=[Depends(feed_reader)],
)
def list_events(
    user: CurrentUser,
    app: App,
    since: Since = 0,
    limit: Limit = 50,
    cursor: Annotated[str | None, Query(max_length=20, pattern=r"^\d+$")] = None,
) -> dict[str, Any]:
    start = position(cursor, "cursor") if cursor is not None else since
    items = app.feed(start, limit)
    more = len(items) == limit and items[-1]["position"] < app.last_position()
    return {"items": items, "next_cursor": str(items[-1]["position"]) if more else None}


def _sse(item: dict[str, Any]) -> str:
    data = json.dumps(item, ensure_ascii=False, separators=(",", ":"))
    return f"id: {item['position']}\nevent: {item['type']}\ndata: {data}\n\n"


@router.get(
    "/stream",
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "a live stream of events"},
        **responses(401, 403, 422, 429),
    },
    response_class=StreamingResponse,
    dependencies=[Depends(feed_reader)],
)
async def stream_events(
    request: Request,
    user: CurrentUser,
    app: App,
    services: Services,
    since: Since = 0,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=20)] = None,
) -> StreamingResponse:
    start = since
    if last_event_id is not None:
        start = position(last_event_id, "Last-Event-ID")
    streams = services.streams
    key = str(user.id)
    if streams.get(key, 0) >= services.settings.sse_connections_per_user:
        raise HttpProblem(
            429, "too many open event streams for this user", {"Retry-After": "5"}, "rate-limited"
        )
    streams[key] = streams.get(key, 0) + 1

    async def events() -> AsyncIterator[str]:
        position = start
        idle = 0.0
        try:
            yield ": connected\n\n"
            while not await request.is_disconnected():
                items = await run_in_threadpool(app.feed, position, 200)
                for item in items:
                    yield _sse(item)
                    position = item["position"]
                if items:
                    idle = 0.0
                    continue
                await asyncio.sleep(POLL_SECONDS)
                idle += POLL_SECONDS
                if idle >= KEEPALIVE_SECONDS:
                    idle = 0.0
                    yield ": keep-alive\n\n"
        finally:
            streams[key] -= 1

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
