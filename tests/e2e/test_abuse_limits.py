"""Abuse limits: per-token and per-address rate limits, the list ``limit`` cap, and the
request and render timeouts.

Each limited app is its own (the shared app has no rate limits). A slow render is a
renderer that blocks on a ``threading.Event`` until the test releases it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api.main import create_app
from projections.documents import FORMATS
from projections.documents.model import Publication
from tests.e2e.conftest import (
    CHECKS,
    World,
    assert_problem,
    client_for,
    live_client,
    serving,
    settings_for,
    wait_for,
)

BURST = 100
RATE = 50
SENT = 1000
OTHERS = 20
ME = "/api/v1/me"
NO_LIMITS = {"rate_limit_per_token": 0, "rate_limit_per_address": 0}


@contextlib.contextmanager
def own_app(data_dir: Path, **settings: Any) -> Iterator[FastAPI]:
    app = create_app(settings_for(data_dir, **settings))
    try:
        yield app
    finally:
        app.state.container.close()


def client_at(app: FastAPI, address: str) -> httpx.AsyncClient:
    """A client over the app in process whose requests come from ``address``."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app, raise_app_exceptions=False, client=(address, 40000)),
        base_url="http://test",
        event_hooks={"response": list(CHECKS)},
    )


def assert_limited(response: httpx.Response) -> None:
    body = assert_problem(response, 429, "rate-limited")
    retry = response.headers["retry-after"]
    assert retry.isdigit() and int(retry) >= 1, retry
    assert retry in body["detail"]


def tally(label: str, responses: list[httpx.Response], elapsed: float) -> tuple[int, int]:
    ok = sum(r.is_success for r in responses)
    limited = sum(r.status_code == 429 for r in responses)
    print(f"\n{label}: sent {len(responses)}, 2xx {ok}, 429 {limited} in {elapsed:.2f} s")
    assert ok + limited == len(responses), sorted({r.status_code for r in responses})
    for response in responses:
        if response.status_code == 429:
            assert_limited(response)
    return ok, limited


async def test_a_burst_from_one_token_is_limited_while_another_user_goes_on(
    world: World, data_dir: Path
) -> None:
    settings = {"rate_limit_per_token": RATE, "rate_limit_burst": BURST}
    with own_app(data_dir, **settings, rate_limit_per_address=0) as app:
        async with client_for(app) as client:
            sent: list[tuple[bool, Awaitable[httpx.Response]]] = []
            for i in range(SENT):
                sent.append((True, client.get(ME, headers=world.observer.auth)))
                if i % (SENT // OTHERS) == 0:  # the other user's requests, through the burst
                    sent.append((False, client.get(ME, headers=world.chair.auth)))
            started = time.monotonic()
            answered = await asyncio.gather(*(request for _, request in sent))
            elapsed = time.monotonic() - started
    mine = [r for (burst, _), r in zip(sent, answered, strict=True) if burst]
    theirs = [r for (burst, _), r in zip(sent, answered, strict=True) if not burst]
    ok, limited = tally("per token", mine, elapsed)
    assert len(mine) == SENT and len(theirs) == OTHERS
    assert BURST <= ok <= BURST + RATE * elapsed + 1, (ok, elapsed)
    assert limited >= SENT - (BURST + RATE * elapsed + 1)
    assert all(r.status_code == 200 for r in theirs), [r.status_code for r in theirs]


async def test_a_burst_from_one_address_is_limited_while_another_address_goes_on(
    world: World, data_dir: Path
) -> None:
    settings = {"rate_limit_per_address": RATE, "rate_limit_burst": BURST}
    people = [world.observer, world.chair, world.proposer, world.secretariat]
    with own_app(data_dir, **settings, rate_limit_per_token=0) as app:
        async with client_at(app, "192.0.2.1") as noisy, client_at(app, "192.0.2.2") as quiet:
            burst = [noisy.get(ME, headers=people[i % 4].auth) for i in range(SENT)]
            others = [quiet.get(ME, headers=world.observer.auth) for _ in range(OTHERS)]
            started = time.monotonic()
            answered = await asyncio.gather(*burst, *others)
            elapsed = time.monotonic() - started
    mine, theirs = list(answered[:SENT]), list(answered[SENT:])
    ok, limited = tally("per address", mine, elapsed)
    # an address's bucket holds twice the burst: several people may share one address
    assert 2 * BURST <= ok <= 2 * BURST + RATE * elapsed + 1, (ok, elapsed)
    assert limited >= SENT - (2 * BURST + RATE * elapsed + 1)
    assert all(r.status_code == 200 for r in theirs), [r.status_code for r in theirs]


def lists(world: World) -> list[str]:
    return [
        "/api/v1/meetings",
        f"/api/v1/meetings/{world.meeting}/proposals",
        f"/api/v1/proposals/{world.submitted}/comments",
        f"/api/v1/proposals/{world.submitted}/history",
        f"/api/v1/meetings/{world.forwarded}/outcome/versions",
        "/api/v1/events",
    ]


@pytest.mark.readonly
async def test_a_list_limit_above_200_is_a_422_problem(
    client: httpx.AsyncClient, world: World
) -> None:
    for path in lists(world):
        for limit in (201, 10_000, 0):
            refused = await client.get(
                path, params={"limit": limit}, headers=world.secretariat.auth
            )
            assert_problem(refused, 422)
        allowed = await client.get(path, params={"limit": 200}, headers=world.secretariat.auth)
        assert allowed.status_code == 200, (path, allowed.text)
        assert len(allowed.json()["items"]) <= 200


# --- timeouts ---------------------------------------------------------------------------


@dataclasses.dataclass
class SlowRenderer:
    """The Markdown renderer, held until ``release`` is set."""

    original: Callable[[Publication], bytes]
    release: threading.Event = dataclasses.field(default_factory=threading.Event)
    entered: threading.Event = dataclasses.field(default_factory=threading.Event)
    finished: threading.Event = dataclasses.field(default_factory=threading.Event)
    calls: int = 0

    def __call__(self, pub: Publication) -> bytes:
        self.calls += 1
        self.entered.set()
        assert self.release.wait(30), "the test never released the render"
        try:
            return self.original(pub)
        finally:
            self.finished.set()

    async def let_go(self) -> None:
        """Release the render and wait (bounded) until it has ended."""
        self.release.set()
        if self.entered.is_set():
            assert await asyncio.to_thread(self.finished.wait, 10)


@pytest.fixture
def slow_md(monkeypatch: pytest.MonkeyPatch) -> Iterator[SlowRenderer]:
    md = FORMATS["md"]
    assert md.write is not None
    slow = SlowRenderer(md.write)
    monkeypatch.setitem(FORMATS, "md", dataclasses.replace(md, write=slow))
    try:
        yield slow
    finally:
        slow.release.set()  # never leave a thread blocked behind


def recommendations(world: World, fmt: str) -> tuple[str, dict[str, str]]:
    return f"/api/v1/meetings/{world.meeting}/recommendations?format={fmt}", world.observer.auth


async def test_a_request_over_the_request_timeout_is_a_503_problem_with_retry_after(
    world: World, data_dir: Path, slow_md: SlowRenderer
) -> None:
    # long enough for the request to reach the held renderer even on a loaded machine
    # (the first request of a new app has been seen to take more than 0.3 s to get there)
    with own_app(data_dir, **NO_LIMITS, request_timeout=1.5, render_timeout=60) as app:
        async with client_for(app) as client:
            path, auth = recommendations(world, "md")
            started = time.monotonic()
            slow = await wait_for(client.get(path, headers=auth))
            elapsed = time.monotonic() - started
            body = assert_problem(slow, 503, "timeout")
            assert slow.headers["retry-after"].isdigit(), slow.headers
            assert slow.headers["x-request-id"]
            assert slow.headers["x-content-type-options"] == "nosniff"
            assert "1.5 s" in body["detail"]
            assert slow_md.entered.is_set() and 1.5 <= elapsed < 6, elapsed
            # the service answers other requests meanwhile
            assert (await client.get(ME, headers=auth)).status_code == 200

            await slow_md.let_go()
            again = await client.get(path, headers=auth)  # the render went on and was kept
            assert again.status_code == 200, again.text
            assert again.headers["content-type"].startswith("text/markdown")
            assert slow_md.calls == 1
            metrics = (await client.get("/metrics")).text
        paths = app.openapi()["paths"]
    assert "503" in paths["/api/v1/me"]["get"]["responses"]  # the timeout is documented
    assert "503" not in paths["/api/v1/events/stream"]["get"]["responses"]
    route = 'method="GET",route="/api/v1/meetings/{meeting_id}/recommendations"'
    assert f'prepmeet_http_requests_total{{{route},status="503"}} 1' in metrics


async def test_a_render_over_the_render_timeout_is_a_503_problem(
    world: World, data_dir: Path, slow_md: SlowRenderer
) -> None:
    with own_app(data_dir, **NO_LIMITS, render_timeout=0.3) as app:
        async with client_for(app) as client:
            path, auth = recommendations(world, "md")
            first, second = await wait_for(
                asyncio.gather(client.get(path, headers=auth), client.get(path, headers=auth))
            )
            for slow in (first, second):
                body = assert_problem(slow, 503, "render-timeout")
                assert slow.headers["retry-after"].isdigit(), slow.headers
                assert "0.3 s" in body["detail"]
            assert slow_md.calls == 1  # the second request waited for the same render
            # other formats render meanwhile
            html = await client.get(recommendations(world, "html")[0], headers=auth)
            assert html.status_code == 200, html.text

            await slow_md.let_go()
            again = await client.get(path, headers=auth)
            assert again.status_code == 200, again.text
            assert again.headers["content-type"].startswith("text/markdown")
            assert slow_md.calls == 1


async def test_the_event_stream_outlives_the_request_timeout(
    world: World, data_dir: Path, slow_md: SlowRenderer
) -> None:
    with (
        own_app(data_dir, **NO_LIMITS, request_timeout=0.3, render_timeout=60) as app,
        serving(app) as base_url,
    ):
        core = app.state.container.app
        last = core.last_position()
        async with (
            live_client(base_url) as client,
            client.stream(
                "GET",
                "/api/v1/events/stream",
                params={"since": last},
                headers=world.ministerial.auth,
            ) as stream,
        ):
            assert stream.status_code == 200
            lines = stream.aiter_lines()
            assert await wait_for(anext(lines)) == ": connected"
            # a request held past the timeout shows that the timeout has passed
            path, auth = recommendations(world, "md")
            assert_problem(await client.get(path, headers=auth), 503, "timeout")
            await slow_md.let_go()
            created = await client.post(
                f"/api/v1/proposals/{world.submitted}/comments",
                json={"text": "Still listening?"},
                headers=world.chair.auth,
            )
            assert created.status_code == 201, created.text
            seen = [await wait_for(anext(lines)) for _ in range(2)]
            assert seen[0] == "" and seen[1].startswith("id: "), seen
            assert int(seen[1].removeprefix("id: ")) > last
