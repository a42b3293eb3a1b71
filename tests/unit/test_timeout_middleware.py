"""The request timeout: it bounds the start of a response, never a response under way."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from api.middleware import Timeout

SCOPE = {"type": "http", "method": "GET", "path": "/api/v1/slow", "headers": []}


async def receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


class Sent(list[dict[str, Any]]):
    async def __call__(self, message: dict[str, Any]) -> None:
        self.append(message)

    @property
    def status(self) -> int:
        return int(self[0]["status"])

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self[1:])


def app_that(before: float, between: float = 0.0, parts: int = 1) -> Any:
    """An ASGI app that starts its response after ``before`` seconds and then sends
    ``parts`` chunks, ``between`` seconds apart."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await asyncio.sleep(before)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for i in range(parts):
            await asyncio.sleep(between)
            more = i < parts - 1
            await send({"type": "http.response.body", "body": b"x", "more_body": more})

    return app


async def test_a_response_that_starts_in_time_is_passed_through() -> None:
    sent = Sent()
    await Timeout(app_that(0.0), seconds=0.5)(SCOPE, receive, sent)
    assert sent.status == 200 and sent.body == b"x"


async def test_a_response_that_has_started_streams_past_the_limit() -> None:
    sent = Sent()
    await Timeout(app_that(0.0, between=0.05, parts=4), seconds=0.1)(SCOPE, receive, sent)
    assert sent.status == 200 and sent.body == b"xxxx"
    assert len(sent) == 5


async def test_a_response_not_started_in_time_is_a_503_and_the_app_is_stopped() -> None:
    stopped = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            stopped.set()
            raise
        await send({"type": "http.response.start", "status": 200, "headers": []})

    sent = Sent()
    await asyncio.wait_for(Timeout(app, seconds=0.05)(SCOPE, receive, sent), 5)
    assert sent.status == 503
    headers = dict(sent[0]["headers"])
    assert headers[b"retry-after"] == b"5"
    assert "0.05 s" in json.loads(sent.body)["detail"]
    await asyncio.wait_for(stopped.wait(), 5)


async def test_what_an_abandoned_request_sends_later_is_dropped() -> None:
    release, resent = asyncio.Event(), asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            # a route in a thread cannot be stopped: it goes on and sends when it is done
            await release.wait()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            resent.set()

    sent = Sent()
    await Timeout(app, seconds=0.05)(SCOPE, receive, sent)
    release.set()
    await asyncio.wait_for(resent.wait(), 5)
    assert [m.get("status") for m in sent if m["type"] == "http.response.start"] == [503]


async def test_an_error_before_the_response_is_raised_not_answered() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise LookupError("a bug")

    sent = Sent()
    with pytest.raises(LookupError, match="a bug"):
        await Timeout(app, seconds=1)(SCOPE, receive, sent)
    assert sent == []


async def test_cancelling_the_request_cancels_the_app() -> None:
    started, stopped = asyncio.Event(), asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        started.set()
        try:
            await asyncio.sleep(10)
        finally:
            stopped.set()

    request = asyncio.ensure_future(Timeout(app, seconds=5)(SCOPE, receive, Sent()))
    await asyncio.wait_for(started.wait(), 5)
    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request
    await asyncio.wait_for(stopped.wait(), 5)


async def test_the_event_stream_and_a_zero_limit_are_not_bounded() -> None:
    for seconds, path in ((0.05, "/api/v1/events/stream"), (0, "/api/v1/slow")):
        sent = Sent()
        scope = {**SCOPE, "path": path}
        await Timeout(app_that(0.15), seconds=seconds)(scope, receive, sent)
        assert sent.status == 200, path
