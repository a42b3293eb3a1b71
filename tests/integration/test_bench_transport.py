"""The load generator's HTTP/1.1 client against a scripted server on a loopback port: what
it sends, the three ways a body may end, keep-alive, and the failures it reports."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import httpx
import pytest

from bench.load import Outcome, run_load
from bench.transport import (
    ConnectFailed,
    ConnectionLost,
    LeanClient,
    LeanTransport,
)


@dataclass
class Seen:
    """A request as the server read it."""

    head: bytes
    body: bytes
    connection: int

    @property
    def line(self) -> str:
        return self.head.split(b"\r\n", 1)[0].decode()

    def header(self, name: str) -> str | None:
        for line in self.head.split(b"\r\n")[1:]:
            key, _, value = line.partition(b":")
            if key.strip().lower() == name.lower().encode():
                return value.strip().decode()
        return None


Answer = Callable[[Seen], bytes | None]
"""What the server writes back to a request; ``None`` closes the connection unanswered."""


@dataclass
class Scripted:
    answer: Answer
    hang_up: bool = False
    """Close the connection after each response."""
    port: int = 0
    seen: list[Seen] = field(default_factory=list)
    connections: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    return
                request = Seen(head, b"", number)
                length = int(request.header("content-length") or 0)
                request.body = await reader.readexactly(length)
                self.seen.append(request)
                reply = self.answer(request)
                if reply is None:
                    return
                writer.write(reply)
                await writer.drain()
                if self.hang_up:
                    return
        finally:
            writer.close()


def reply(status: int, body: bytes, *extra: str) -> bytes:
    head = [f"HTTP/1.1 {status} X", f"content-length: {len(body)}", *extra]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


Serve = Callable[..., Awaitable[Scripted]]


@pytest.fixture
async def serve() -> AsyncIterator[Serve]:
    """Start scripted servers on loopback ports; all closed after the test."""
    servers: list[asyncio.Server] = []

    async def started(answer: Answer, hang_up: bool = False) -> Scripted:
        scripted = Scripted(answer, hang_up)
        server = await asyncio.start_server(scripted.handle, "127.0.0.1", 0)
        scripted.port = server.sockets[0].getsockname()[1]
        servers.append(server)
        return scripted

    yield started
    for server in servers:
        server.close()


def echo_json(request: Seen) -> bytes:
    body = json.dumps({"line": request.line, "body": request.body.decode()}).encode()
    return reply(200, body, "content-type: application/json")


async def test_a_post_carries_its_json_body_query_and_headers(serve: Serve) -> None:
    server = await serve(echo_json)
    async with LeanClient(server.url) as client:
        r = await client.post(
            "/api/x", json={"é": [1, 2]}, params={"a": "b c"}, headers={"Authorization": "T"}
        )
    assert r.status_code == 200
    assert r.json() == {"line": "POST /api/x?a=b+c HTTP/1.1", "body": '{"é":[1,2]}'}
    seen = server.seen[0]
    assert seen.header("host") == f"127.0.0.1:{server.port}"
    assert seen.header("content-type") == "application/json"
    assert seen.header("content-length") == str(len('{"é":[1,2]}'.encode()))
    assert seen.header("authorization") == "T"
    assert r.headers["content-type"] == "application/json"


async def test_a_get_has_no_body_and_a_post_without_one_says_so(serve: Serve) -> None:
    server = await serve(echo_json)
    async with LeanClient(server.url) as client:
        await client.get("/a")
        await client.post("/b")
    get, post = server.seen
    assert get.header("content-length") is None and get.header("content-type") is None
    assert post.header("content-length") == "0" and post.body == b""


async def test_requests_after_the_first_reuse_the_connection(serve: Serve) -> None:
    server = await serve(echo_json)
    async with LeanClient(server.url) as client:
        for _ in range(5):
            assert (await client.get("/")).status_code == 200
    assert server.connections == 1
    assert [s.connection for s in server.seen] == [1] * 5


async def test_chunked_and_read_to_close_bodies(serve: Serve) -> None:
    def answer(request: Seen) -> bytes:
        if request.line.startswith("GET /chunked"):
            head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
            return head + b"3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n"
        return b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n"

    server = await serve(answer)
    async with LeanClient(server.url) as client:
        assert (await client.get("/chunked")).content == b"abcde"
        assert (await client.get("/chunked")).text == "abcde"
    assert server.connections == 1

    def close_after(request: Seen) -> bytes:
        return b"HTTP/1.1 200 OK\r\n\r\nall of it"

    ending = await serve(close_after, hang_up=True)
    async with LeanClient(ending.url) as client:
        # no length: the body runs to the end of the connection, which is not reused
        assert (await client.get("/")).content == b"all of it"
        assert (await client.get("/")).content == b"all of it"
    assert ending.connections == 2


async def test_a_kept_alive_connection_the_server_closed_is_replaced_once(
    serve: Serve,
) -> None:
    answered: set[int] = set()

    def once_per_connection(request: Seen) -> bytes | None:
        if request.connection in answered:
            return None
        answered.add(request.connection)
        return reply(200, b"ok")

    server = await serve(once_per_connection)
    async with LeanClient(server.url) as client:
        assert (await client.get("/1")).content == b"ok"
        # the server reads the second request on the first connection and hangs up
        assert (await client.get("/2")).content == b"ok"
    assert server.connections == 2


async def test_a_server_that_never_answers_is_a_connection_lost(serve: Serve) -> None:
    server = await serve(lambda request: None)
    async with LeanClient(server.url) as client:
        with pytest.raises(ConnectionLost) as caught:
            await client.get("/")
    assert isinstance(caught.value, OSError)  # what the load pool counts as a failed request


async def test_no_server_is_a_connect_failure() -> None:
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    async with LeanClient(f"http://127.0.0.1:{port}") as client:
        with pytest.raises(ConnectFailed):
            await client.get("/")


async def test_a_slow_answer_times_out(serve: Serve) -> None:
    gate = asyncio.Event()

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await gate.wait()
        writer.close()

    server = await asyncio.start_server(slow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with LeanClient(f"http://127.0.0.1:{port}", timeout=0.05) as client:
            with pytest.raises(TimeoutError):
                await client.get("/")
    finally:
        gate.set()
        server.close()


async def test_only_plain_http() -> None:
    with pytest.raises(ValueError, match="plain http"):
        LeanClient("https://example.org")


async def test_httpx_over_the_transport_maps_its_failures(serve: Serve) -> None:
    server = await serve(echo_json)
    async with httpx.AsyncClient(base_url=server.url, transport=LeanTransport()) as client:
        r = await client.post("/x", json={"a": 1})
        assert r.status_code == 200 and r.json()["body"] == '{"a":1}'
    mute = await serve(lambda request: None)
    async with httpx.AsyncClient(base_url=mute.url, transport=LeanTransport()) as client:
        with pytest.raises(httpx.TransportError):
            await client.get("/")


async def test_the_load_pool_counts_responses_and_failures(serve: Serve) -> None:
    def answer(request: Seen) -> bytes | None:
        if request.line.startswith("GET /fail"):
            return None
        return reply(201, b"{}")

    server = await serve(answer)

    async def fn(client: LeanClient, worker: int, seq: int) -> Outcome:
        r = await client.get("/fail" if seq == 2 else "/ok")
        return Outcome(r.status_code, r.status_code == 201)

    result = await run_load(server.url, fn, concurrency=3, count=12, timeout=2.0)
    assert result.statuses[201] >= 6
    assert result.statuses[0] >= 1  # the failed request of a worker that got that far
    assert result.errors == result.statuses[0]
    assert len(result.ok) == result.statuses[201]
