"""ASGI middleware: the body size limit, request timeouts, request ids and security headers."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.observability import AccessLog, Metrics
from api.problems import PROBLEM_MEDIA_TYPE, problem
from api.ratelimit import RateLimit
from api.settings import Settings


async def _send_problem(send: Send, status: int, title: str, detail: str) -> None:
    body = json.dumps(
        {"type": "about:blank", "title": title, "status": status, "detail": detail}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """Refuse bodies over the limit (413) before reading them in full.

    The body is read up to the limit and replayed to the application, so a body sent
    without ``Content-Length`` is cut off as soon as it passes the limit.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        too_large = f"the body is larger than {self.max_bytes} bytes"
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await _send_problem(send, 400, "Bad request", "invalid Content-Length")
                    return
                if declared > self.max_bytes:
                    await _send_problem(send, 413, "Content too large", too_large)
                    return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await _send_problem(send, 413, "Content too large", too_large)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


UNBOUNDED = "/events/stream"
"""The path end of the routes that :class:`Timeout` leaves unbounded."""


class Timeout:
    """503 with ``Retry-After`` when a request has not begun its response within ``seconds``.

    The bound is on the start of the response, so a response that has started streams to its
    end; the event stream is not bounded at all. Routes declared with ``def`` run in the
    thread pool, and a thread cannot be stopped: on timeout the request stops waiting and is
    answered, while the route runs on in its thread and what it then sends is dropped. A
    command may therefore still be recorded after its 503; a retry with the same
    ``Idempotency-Key`` returns it.
    """

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.seconds <= 0 or scope["path"].endswith(UNBOUNDED):
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        # one future and a timer per request: the future is settled by whichever comes
        # first, the response's start, the end of the request, or the timer
        settled = loop.create_future()
        started = timed_out = False

        def settle(_: object = None) -> None:
            if not settled.done():
                settled.set_result(None)

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if timed_out:
                return  # the client has had its 503
            if message["type"] == "http.response.start":
                started = True
                settle()
            await send(message)

        task = asyncio.ensure_future(self.app(scope, receive, guarded_send))
        task.add_done_callback(settle)
        timer = loop.call_later(self.seconds, settle)
        try:
            await settled
        except BaseException:
            task.cancel()
            task.add_done_callback(_retrieve)
            raise
        finally:
            timer.cancel()
        if started or task.done():
            await task
            return
        timed_out = True
        task.cancel()
        task.add_done_callback(_retrieve)
        answer = problem(
            503,
            f"the request took more than {self.seconds:g} s; retry shortly",
            kind="timeout",
            headers={"Retry-After": "5"},
        )
        await answer(scope, receive, send)


def _retrieve(task: asyncio.Future[None]) -> None:
    """Consume the outcome of a request abandoned on timeout or cancellation (nobody awaits
    it)."""
    if not task.cancelled():
        task.exception()


JSON_MEDIA = ("application/json", "application/problem+json", "application/*", "*/*")
OTHER_FORMATS = re.compile(
    r"/recommendations$|/outcome/versions/[^/]+$|/outcome/changes$|/events/stream$"
    r"|^/metrics$|^/docs"
)


def accepts_json(accept: str) -> bool:
    for part in accept.split(","):
        media, *params = (p.strip().lower() for p in part.split(";"))
        refused = any(p.replace(" ", "") in ("q=0", "q=0.0", "q=0.00", "q=0.000") for p in params)
        if not refused and (media in JSON_MEDIA or media.endswith("+json")):
            return True
    return False


class JsonOnly:
    """406 for an ``Accept`` that excludes JSON, on every route that serves only JSON."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not OTHER_FORMATS.search(scope["path"]):
            for name, value in scope["headers"]:
                if name == b"accept":
                    accept = value.decode("latin-1")
                    if accept.strip() and not accepts_json(accept):
                        await _send_problem(
                            send,
                            406,
                            "Not acceptable",
                            "this resource is served as application/json only",
                        )
                        return
                    break
        await self.app(scope, receive, send)


CSP = b"default-src 'none'; frame-ancestors 'none'"
HTML_CSP = b"default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"
"""The documents in HTML carry their styles inline and fetch nothing."""


class Headers:
    """Request ids and security headers on every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = ""
        authenticated = False
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                candidate = value.decode("latin-1")[:128]
                if candidate.isprintable():
                    request_id = candidate
            elif name == b"authorization":
                authenticated = True
        request_id = request_id or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: list[Any] = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                extra = [
                    (b"x-request-id", request_id.encode("latin-1")),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"x-frame-options", b"DENY"),
                ]
                if authenticated and b"cache-control" not in present:
                    extra.append((b"cache-control", b"no-store"))
                if b"content-security-policy" not in present:
                    media = next((v for k, v in headers if k.lower() == b"content-type"), b"")
                    html = media.lower().startswith(b"text/html")
                    extra.append((b"content-security-policy", HTML_CSP if html else CSP))
                message["headers"] = headers + extra
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install(app: FastAPI, settings: Settings, metrics: Metrics) -> None:
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "PUT", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "If-Match", "Idempotency-Key"],
            expose_headers=["ETag", "Location", "Repr-Digest", "X-Request-ID"],
        )
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(JsonOnly)
    app.add_middleware(Timeout, seconds=settings.request_timeout)
    app.add_middleware(
        RateLimit,
        per_token=settings.rate_limit_per_token,
        per_address=settings.rate_limit_per_address,
        burst=settings.rate_limit_burst,
    )
    app.add_middleware(AccessLog, metrics=metrics, router=app.router)
    app.add_middleware(Headers)
