"""Secrets and security headers: tokens never leave the responses that issue them, and
every response carries the headers that keep browsers and caches from misusing it.

The token run issues tokens over HTTP, uses, refuses and revokes them, then scans what the
service keeps and says: the captured log records, the same records as JSON log lines, every
response and error body (but the two that show a token once), and a raw dump of the event
store and the views, tables and files both.
"""

from __future__ import annotations

import io
import json
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from api.main import create_app
from domain.store import EVENTS_FILE
from tests.e2e.conftest import (
    CHECKS,
    LIMIT,
    PROBLEM,
    UNKNOWN_ID,
    World,
    assert_problem,
    captured_log,
    settings_for,
)

NO_LIMITS = {"rate_limit_per_token": 0, "rate_limit_per_address": 0}
VIEWS_FILE = "views.sqlite"
ORIGIN = "https://portal.example.org"
CLIENT_LOGGERS = ("httpx", "httpcore")
"""The test client's own loggers (they log the URLs it requests): not the service's logs."""


def from_service(record: logging.LogRecord) -> bool:
    return not record.name.startswith(CLIENT_LOGGERS)


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """Every log record, formatted as the server formats it: one JSON object a line."""
    with captured_log(logging.getLogger(), from_service) as out:
        yield out


@pytest.fixture
def own_app(world: World, data_dir: Path) -> Iterator[FastAPI]:
    app = create_app(settings_for(data_dir, **NO_LIMITS))
    try:
        yield app
    finally:
        app.state.container.close()


def recording_client(app: FastAPI, seen: list[httpx.Response]) -> httpx.AsyncClient:
    async def record(response: httpx.Response) -> None:
        await response.aread()
        seen.append(response)

    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app, raise_app_exceptions=False),
        base_url="http://test",
        event_hooks={"response": [*CHECKS, record]},
    )


def sqlite_dump(path: Path) -> str:
    """Every row of every table, as text (BLOBs decoded byte for byte)."""
    conn = sqlite3.connect(path)
    try:
        tables = [
            name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
        lines = []
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                cells = [c.decode("latin-1") if isinstance(c, bytes) else str(c) for c in row]
                lines.append(f"{table}: {' | '.join(cells)}")
        return "\n".join(lines)
    finally:
        conn.close()


def files_bytes(data_dir: Path, name: str) -> bytes:
    """The database file with its write-ahead log and shared memory, as they are on disk."""
    return b"".join(p.read_bytes() for p in sorted(data_dir.glob(f"{name}*")) if p.is_file())


async def test_tokens_appear_in_no_log_error_response_or_store(
    own_app: FastAPI,
    world: World,
    data_dir: Path,
    caplog: pytest.LogCaptureFixture,
    json_log: io.StringIO,
) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[httpx.Response] = []
    showing: list[httpx.Response] = []  # the responses that show a new token, once
    admin = world.secretariat.auth
    async with recording_client(own_app, seen) as client:
        created = await client.post(
            "/api/v1/users",
            json={"name": "Tomasz Nowak", "delegation": "Poland"},
            headers={**admin, "Idempotency-Key": "tokens-run-1"},
        )
        assert created.status_code == 201, created.text
        showing.append(created)
        user_id, first = created.json()["id"], created.json()["token"]
        retried = await client.post(
            "/api/v1/users",
            json={"name": "Tomasz Nowak", "delegation": "Poland"},
            headers={**admin, "Idempotency-Key": "tokens-run-1"},
        )
        assert retried.json()["id"] == user_id and retried.json()["token"] is None
        issued = await client.post(f"/api/v1/users/{user_id}/tokens", headers=admin)
        assert issued.status_code == 201, issued.text
        showing.append(issued)
        second = issued.json()["token"]
        tokens = {first, second, *(world.person(h).token for h in ("secretariat", "chair"))}
        assert len(tokens) == 4

        for token in (first, second):
            auth = {"Authorization": f"Bearer {token}"}
            me = await client.get("/api/v1/me", headers=auth)
            assert me.status_code == 200 and me.json()["id"] == user_id
            # refusals and bad input, with the token in hand
            assert_problem(await client.post("/api/v1/users", json={}, headers=auth), 403)
            assert_problem(await client.get("/api/v1/meetings/nope", headers=auth), 404)
            assert_problem(await client.get("/api/v1/meetings?limit=0", headers=auth), 422)
            # a token sent the wrong way, or with something added, or in the query
            for header in (f"Basic {token}", f"Bearer {token}x", f"Bearer x{token}", token):
                refused = await client.get("/api/v1/me", headers={"Authorization": header})
                assert_problem(refused, 401)
            assert_problem(await client.get(f"/api/v1/me?access_token={token}"), 401)
            assert_problem(await client.get(f"/api/v1/nothing?token={token}", headers=auth), 404)
        assert_problem(await client.post("/api/v1/users", content=b"{not json", headers=admin), 422)
        comment = await client.post(
            f"/api/v1/proposals/{world.submitted}/comments",
            json={"text": "Noted."},
            headers=world.chair.auth,
        )
        assert comment.status_code == 201, comment.text
        revoked = await client.delete(f"/api/v1/users/{user_id}/tokens", headers=admin)
        assert revoked.status_code == 204
        for token in (first, second):
            refused = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
            assert_problem(refused, 401)
        views = await client.get(
            f"/api/v1/meetings/{world.meeting}/proposals",
            params={"after": comment.json()["position"]},
            headers=admin,
        )
        assert views.status_code == 200

    service = [r for r in caplog.records if from_service(r)]
    records = [json.dumps({k: str(v) for k, v in vars(r).items()}) for r in service]
    log_lines = json_log.getvalue().splitlines()
    assert any(json.loads(line).get("route") == "/api/v1/me" for line in log_lines)
    assert any(r.get("logger") == "prepmeet.access" for r in map(json.loads, log_lines))
    bodies = [
        f"{r.status_code} {r.headers} {r.text}" for r in seen if all(r is not s for s in showing)
    ]
    assert sum("problem" in b for b in bodies) >= 20, "the run made too few refusals"
    events = sqlite_dump(data_dir / EVENTS_FILE)
    views_dump = sqlite_dump(data_dir / VIEWS_FILE)
    raw = files_bytes(data_dir, EVENTS_FILE) + files_bytes(data_dir, VIEWS_FILE)
    # the scans look where the run left its marks
    assert "stored_events" in events and user_id in events and "Tomasz Nowak" in events
    assert world.submitted in views_dump and "Noted." in views_dump
    assert b"Tomasz Nowak" in raw

    places = {
        "log records": "\n".join(records),
        "JSON log lines": json_log.getvalue(),
        "responses": "\n".join(bodies),
        "event store": events,
        "views": views_dump,
    }
    print(
        f"\nsecrets: {len(tokens)} tokens, {len(records)} log records, {len(seen)} responses, "
        f"{events.count(chr(10)) + 1} stored rows, {len(raw)} bytes of database files"
    )
    for token in tokens:
        for where, text in places.items():
            assert token not in text, f"a token is in the {where}"
        assert token.encode() not in raw, "a token is in the database files"


# --- security headers -------------------------------------------------------------------


def assert_secured(response: httpx.Response, authenticated: bool) -> None:
    where = f"{response.request.method} {response.request.url} ({response.status_code})"
    assert response.headers.get("x-content-type-options") == "nosniff", where
    if authenticated:
        assert response.headers.get("cache-control") == "no-store", where
    assert not [k for k in response.headers if k.lower().startswith("access-control-")], where


@pytest.mark.readonly
async def test_every_kind_of_response_carries_the_security_headers(
    client: httpx.AsyncClient, world: World
) -> None:
    auth = world.observer.auth
    meeting = f"/api/v1/meetings/{world.meeting}"
    anonymous = [
        await client.get("/healthz"),
        await client.get("/metrics"),
        await client.get("/openapi.json"),
        await client.get("/api/v1/me"),  # a 401 problem
    ]
    authenticated = [
        await client.get("/api/v1/me", headers=auth),
        await client.get(meeting, headers=auth),
        await client.get(f"/api/v1/meetings/{UNKNOWN_ID}", headers=auth),  # 404
        await client.get("/api/v1/meetings?limit=500", headers=auth),  # 422
        await client.get("/api/v1/me", headers={**auth, "Accept": "text/csv"}),  # 406
        await client.post("/api/v1/users", content=b"x" * (LIMIT + 1), headers=auth),  # 413
        await client.post(f"{meeting}/open", headers=auth),  # 403
    ]
    for fmt in ("json", "md", "html", "pdf", "docx", "csv"):
        document = await client.get(f"{meeting}/recommendations?format={fmt}", headers=auth)
        assert document.status_code == 200, document.text
        authenticated.append(document)
    forwarded = f"/api/v1/meetings/{world.forwarded}"
    authenticated += [
        await client.get(f"{meeting}/outcome/changes?from=live&format=html", headers=auth),
        await client.get(f"{forwarded}/outcome/versions/1?format=json", headers=auth),
    ]
    kinds = {r.headers["content-type"].split(";")[0] for r in anonymous + authenticated}
    assert {"application/json", PROBLEM, "text/html", "application/pdf"} <= kinds, kinds
    for response in anonymous:
        assert_secured(response, authenticated=False)
    for response in authenticated:
        assert_secured(response, authenticated=True)
    html = [r for r in authenticated if r.headers["content-type"].startswith("text/html")]
    assert len(html) == 2  # the document and its redline
    for response in html:
        policy = {
            part.strip().split()[0]: part.strip().split()[1:]
            for part in response.headers["content-security-policy"].split(";")
        }
        assert policy["default-src"] == ["'none'"], policy
        assert policy["frame-ancestors"] == ["'none'"], policy
        # the documents carry their styles inline; the policy lets only those through
        assert "<style>" in response.text
        assert policy["style-src"] == ["'unsafe-inline'"], policy
        assert set(policy) == {"default-src", "style-src", "frame-ancestors"}, policy


@pytest.mark.readonly
async def test_cors_is_off_unless_configured(client: httpx.AsyncClient, world: World) -> None:
    origin = {"Origin": ORIGIN}
    answered = [
        await client.get("/api/v1/me", headers={**world.observer.auth, **origin}),
        await client.get("/healthz", headers=origin),
        await client.options(
            "/api/v1/me",
            headers={
                **origin,
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "Authorization",
            },
        ),
    ]
    for response in answered:
        assert not [k for k in response.headers if k.lower().startswith("access-control-")], (
            response.request.method,
            dict(response.headers),
        )


async def test_cors_answers_a_configured_origin_and_only_it(world: World, data_dir: Path) -> None:
    app = create_app(settings_for(data_dir, **NO_LIMITS, cors_origins=[ORIGIN]))
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app), base_url="http://test"
        ) as client:
            preflight = await client.options(
                "/api/v1/me",
                headers={
                    "Origin": ORIGIN,
                    "Access-Control-Request-Method": "GET",
                    "Access-Control-Request-Headers": "Authorization",
                },
            )
            allowed = await client.get(
                "/api/v1/me", headers={**world.observer.auth, "Origin": ORIGIN}
            )
            other = await client.get(
                "/api/v1/me", headers={**world.observer.auth, "Origin": "https://evil.example"}
            )
    finally:
        app.state.container.close()
    assert preflight.status_code == 200, preflight.text
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    assert "GET" in preflight.headers["access-control-allow-methods"]
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    assert preflight.headers["x-content-type-options"] == "nosniff"
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    assert "x-request-id" in allowed.headers["access-control-expose-headers"].lower()
    assert allowed.headers["cache-control"] == "no-store"
    assert other.status_code == 200
    assert "access-control-allow-origin" not in other.headers
