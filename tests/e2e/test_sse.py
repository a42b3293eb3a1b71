"""The live event stream (Server-Sent Events), against a real uvicorn server.

httpx's in-process transport runs the app to the end before it answers, and an event
stream has no end, so these tests serve the app over loopback TCP (``serving``). Every read
is bounded (``wait_for``): a stream that stops delivering fails the test, nothing sleeps.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI

from domain.application import PreparatoryMeetings
from tests.e2e.conftest import World, assert_problem, live_client, serving, wait_for

STREAM = "/api/v1/events/stream"


@dataclass
class Event:
    id: int
    event: str
    data: dict[str, Any]


class Stream:
    """Reads Server-Sent Events off an open response, one bounded read at a time."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.lines = response.aiter_lines()
        self.comments: list[str] = []

    async def next(self, seconds: float = 10.0) -> Event:
        fields: dict[str, str] = {}
        while True:
            line = await wait_for(anext(self.lines), seconds)
            if line == "":
                if fields:
                    return Event(int(fields["id"]), fields["event"], json.loads(fields["data"]))
                continue
            if line.startswith(":"):
                self.comments.append(line[1:].strip())
                continue
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")

    async def until(self, position: int) -> list[Event]:
        """Every event up to and including ``position``."""
        events: list[Event] = []
        while not events or events[-1].id < position:
            events.append(await self.next())
        return events


@asynccontextmanager
async def open_stream(
    client: httpx.AsyncClient, world: World, **headers: str
) -> AsyncIterator[Stream]:
    auth = {**world.secretariat.auth, **{k.replace("_", "-"): v for k, v in headers.items()}}
    async with client.stream("GET", STREAM, headers=auth) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        yield Stream(response)


async def comment(client: httpx.AsyncClient, world: World, text: str) -> int:
    """Record one event over HTTP; its position."""
    response = await client.post(
        f"/api/v1/proposals/{world.submitted}/comments",
        json={"text": text},
        headers=world.chair.auth,
    )
    assert response.status_code == 201
    position: int = response.json()["position"]
    return position


async def test_the_stream_delivers_an_event_recorded_after_the_client_connected(
    app: FastAPI, world: World, core: PreparatoryMeetings
) -> None:
    last = core.last_position()
    with serving(app) as base_url:
        async with live_client(base_url) as client, open_stream(client, world) as stream:
            backlog = await stream.until(last)
            assert [e.id for e in backlog] == [e["position"] for e in core.feed(0, 10_000)]
            assert stream.comments[0] == "connected"

            position = await comment(client, world, "Heard live")
            assert position == last + 1
            event = await stream.next()
            assert (event.id, event.event) == (position, "ProposalCommented")
            assert event.data["position"] == position
            assert event.data["type"] == "ProposalCommented"
            assert event.data["actor"] == world.chair.id
            assert event.data["aggregate_id"] == world.submitted
            assert event.data["data"]["text"] == "Heard live"
            assert event.data == core.feed(last, 1)[0]


async def test_a_reconnection_with_last_event_id_resumes_without_gaps_or_repeats(
    app: FastAPI, world: World, core: PreparatoryMeetings
) -> None:
    with serving(app) as base_url:
        async with live_client(base_url) as client:
            async with open_stream(client, world) as stream:
                seen = await stream.until(10)
            last_seen = seen[-1].id
            assert [e.id for e in seen] == list(range(1, last_seen + 1))

            # events recorded while the client was away, and one more once it is back
            missed = [await comment(client, world, f"While away {i}") for i in range(3)]
            async with open_stream(client, world, Last_Event_ID=str(last_seen)) as stream:
                resumed = await stream.until(missed[-1])
                expected = [e["position"] for e in core.feed(last_seen, 10_000)]
                assert [e.id for e in resumed] == expected
                assert resumed[0].id == last_seen + 1
                assert [e.id for e in resumed][-3:] == missed
                live = await comment(client, world, "After the return")
                assert (await stream.next()).id == live

            # the Last-Event-ID wins over ?since=
            async with client.stream(
                "GET",
                STREAM,
                params={"since": 0},
                headers={**world.ministerial.auth, "Last-Event-ID": str(live - 1)},
            ) as response:
                assert (await Stream(response).next()).id == live


async def test_since_starts_the_stream_after_that_position(
    app: FastAPI, world: World, core: PreparatoryMeetings
) -> None:
    last = core.last_position()
    with serving(app) as base_url:
        async with (
            live_client(base_url) as client,
            client.stream(
                "GET", STREAM, params={"since": last - 2}, headers=world.ministerial.auth
            ) as response,
        ):
            stream = Stream(response)
            assert [(await stream.next()).id for _ in range(2)] == [last - 1, last]


async def test_a_user_may_hold_only_a_few_streams_open_at_once(app: FastAPI, world: World) -> None:
    limit = app.state.container.settings.sse_connections_per_user
    with serving(app) as base_url:
        async with live_client(base_url) as client, AsyncExitStack() as streams:
            for _ in range(limit):
                response = await wait_for(
                    streams.enter_async_context(
                        client.stream("GET", STREAM, headers=world.secretariat.auth)
                    )
                )
                assert response.status_code == 200
            refused = await wait_for(client.get(STREAM, headers=world.secretariat.auth))
            assert_problem(refused, 429, "rate-limited")
            assert refused.headers["retry-after"] == "5"
            other = await wait_for(
                streams.enter_async_context(
                    client.stream("GET", STREAM, headers=world.ministerial.auth)
                )
            )
            assert other.status_code == 200
