"""Observability: request ids, the JSON access log and the Prometheus metrics.

The metrics count into the container an app was built with, so these tests build apps of
their own rather than use the shared one.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api.container import Container
from api.main import create_app
from tests.e2e.conftest import (
    UNKNOWN_ID,
    World,
    assert_problem,
    captured_log,
    client_for,
    settings_for,
)

NO_LIMITS = {"rate_limit_per_token": 0, "rate_limit_per_address": 0}
GENERATED = re.compile(r"^[0-9a-f]{32}$")
SAMPLE = re.compile(r'^(?P<name>[a-z_]+)(?:\{(?P<labels>(?:[^"}]|"[^"]*")*)\})? (?P<value>\S+)$')
LABEL = re.compile(r'(\w+)="([^"]*)"')
MEETING_ROUTE = "/api/v1/meetings/{meeting_id}"
COMMENTS_ROUTE = "/api/v1/proposals/{proposal_id}/comments"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def own_app(world: World, data_dir: Path) -> Iterator[FastAPI]:
    app = create_app(settings_for(data_dir, **NO_LIMITS))
    try:
        yield app
    finally:
        app.state.container.close()


@pytest.fixture
async def client(own_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(own_app) as c:
        yield c


@pytest.fixture
def access_log() -> Iterator[io.StringIO]:
    """The access log's lines, formatted as the server formats them."""
    with captured_log(logging.getLogger("prepmeet.access")) as out:
        yield out


def log_lines(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


async def test_a_given_request_id_is_echoed_and_logged(
    client: httpx.AsyncClient, world: World, access_log: io.StringIO
) -> None:
    given = "client-7f3a-2025-04-15"
    ok = await client.get("/api/v1/me", headers={**world.chair.auth, "X-Request-ID": given})
    assert ok.status_code == 200 and ok.headers["x-request-id"] == given
    refused = await client.get("/api/v1/me", headers={"X-Request-ID": f"{given}-b"})
    assert_problem(refused, 401)
    assert refused.headers["x-request-id"] == f"{given}-b"

    lines = log_lines(access_log)
    assert len(lines) == 2, lines
    first, second = lines
    assert first["request_id"] == given
    assert first["logger"] == "prepmeet.access" and first["level"] == "info"
    assert first["method"] == "GET" and first["route"] == "/api/v1/me"
    assert first["status"] == 200 and first["user_id"] == world.chair.id
    assert isinstance(first["duration_ms"], float) and first["duration_ms"] >= 0
    assert first["time"].endswith("+00:00")
    assert second["request_id"] == f"{given}-b"
    assert second["status"] == 401 and second["user_id"] is None


async def test_a_request_id_is_generated_when_absent_and_logged(
    client: httpx.AsyncClient, world: World, access_log: io.StringIO
) -> None:
    answered = [
        await client.get("/healthz"),
        await client.get(f"/api/v1/meetings/{world.meeting}", headers=world.observer.auth),
        await client.get("/api/v1/nothing-here", headers=world.observer.auth),
    ]
    ids = [r.headers["x-request-id"] for r in answered]
    assert all(GENERATED.match(i) for i in ids), ids
    assert len(set(ids)) == 3
    lines = log_lines(access_log)
    assert [line["request_id"] for line in lines] == ids
    assert [line["route"] for line in lines] == ["/healthz", MEETING_ROUTE, "unmatched"]
    assert [line["status"] for line in lines] == [200, 200, 404]
    assert world.meeting not in access_log.getvalue()  # routes, never concrete paths


def parse_metrics(text: str) -> tuple[Samples, dict[str, str]]:
    """The samples by name and labels, and the declared type of each metric."""
    samples: Samples = {}
    types: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            types[name] = kind
            continue
        if not line or line.startswith("#"):
            continue
        match = SAMPLE.match(line)
        assert match, f"not a Prometheus sample: {line!r}"
        labels = frozenset(LABEL.findall(match["labels"] or ""))
        samples[(match["name"], labels)] = float(match["value"])
    return samples, types


async def scrape(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples, types = parse_metrics(response.text)
    assert types == {
        "prepmeet_http_requests_total": "counter",
        "prepmeet_http_request_duration_seconds": "histogram",
        "prepmeet_events_recorded": "gauge",
        "prepmeet_view_position": "gauge",
        "prepmeet_projection_lag_events": "gauge",
    }
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def requests(samples: Samples, route: str, status: int) -> float:
    return value(
        samples, "prepmeet_http_requests_total", method="GET", route=route, status=str(status)
    )


def histogram(samples: Samples, method: str, route: str) -> list[tuple[float, float]]:
    """The (upper bound, cumulative count) of every bucket, +Inf last."""
    buckets = [
        (float(dict(labels)["le"]), n)
        for (name, labels), n in samples.items()
        if name == "prepmeet_http_request_duration_seconds_bucket"
        and dict(labels)["method"] == method
        and dict(labels)["route"] == route
    ]
    return sorted(buckets)


async def test_metrics_count_requests_and_latency_by_route_and_status(
    client: httpx.AsyncClient, world: World
) -> None:
    before = await scrape(client)
    for _ in range(3):
        found = await client.get(f"/api/v1/meetings/{world.meeting}", headers=world.observer.auth)
        assert found.status_code == 200
    missing = await client.get(f"/api/v1/meetings/{UNKNOWN_ID}", headers=world.observer.auth)
    assert_problem(missing, 404)
    after = await scrape(client)

    assert requests(after, MEETING_ROUTE, 200) - requests(before, MEETING_ROUTE, 200) == 3
    assert requests(after, MEETING_ROUTE, 404) - requests(before, MEETING_ROUTE, 404) == 1
    # the first scrape is counted too
    assert requests(after, "/metrics", 200) == requests(before, "/metrics", 200) + 1 >= 1

    labels = {"method": "GET", "route": MEETING_ROUTE}
    count = value(after, "prepmeet_http_request_duration_seconds_count", **labels)
    assert count - value(before, "prepmeet_http_request_duration_seconds_count", **labels) == 4
    buckets = histogram(after, "GET", MEETING_ROUTE)
    assert len(buckets) >= 5 and buckets[-1] == (float("inf"), count)
    counts = [n for _, n in buckets]
    assert counts == sorted(counts), buckets  # cumulative
    total = value(after, "prepmeet_http_request_duration_seconds_sum", **labels)
    assert total > value(before, "prepmeet_http_request_duration_seconds_sum", **labels)
    assert world.meeting not in str(after)


async def test_metrics_follow_events_recorded_and_projection_lag(
    own_app: FastAPI, client: httpx.AsyncClient, world: World
) -> None:
    container: Container = own_app.state.container
    assert container.projector is not None
    before = await scrape(client)
    recorded = value(before, "prepmeet_events_recorded")
    assert recorded == container.app.last_position() > 0
    assert value(before, "prepmeet_projection_lag_events") == 0
    assert value(before, "prepmeet_view_position") == recorded

    container.projector.stop()
    viewed = container.views.position()
    path = f"/api/v1/proposals/{world.submitted}/comments"
    written = [
        await client.post(path, json={"text": f"Point {n}"}, headers=world.chair.auth)
        for n in range(3)
    ]
    assert all(r.status_code == 201 for r in written), [r.text for r in written]
    position = written[-1].json()["position"]
    stalled = await scrape(client)
    assert value(stalled, "prepmeet_events_recorded") == position >= recorded + 3
    assert value(stalled, "prepmeet_view_position") == viewed
    assert value(stalled, "prepmeet_projection_lag_events") == position - viewed > 0
    route = {"method": "POST", "route": COMMENTS_ROUTE, "status": "201"}
    assert value(stalled, "prepmeet_http_requests_total", **route) == 3

    container.projector.start()
    caught_up = await client.get(path, params={"after": position}, headers=world.chair.auth)
    assert caught_up.status_code == 200
    after = await scrape(client)
    assert value(after, "prepmeet_projection_lag_events") == 0
    assert value(after, "prepmeet_view_position") == position
