"""A lean HTTP/1.1 transport for httpx over asyncio streams, for load generation.

httpx's default transport (httpcore over anyio, h11) spends about 2 ms of CPU per request
on this kind of machine, several times what the server spends on an echo; on two cores the
client would then be the bottleneck, and every ceiling would be a ceiling of the client.
This transport keeps httpx's client API (``httpx.AsyncClient(transport=LeanTransport())``)
and speaks plain HTTP/1.1 with keep-alive itself: about a tenth of the cost.

Plain ``http://`` only; responses with ``Content-Length``, chunked or read-to-close bodies.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from dataclasses import dataclass

import httpx

NO_BODY = {204, 304}


@dataclass
class _Conn:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    used: bool = False

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


class LeanTransport(httpx.AsyncBaseTransport):
    """Keep-alive connections to one origin, reused last-in first-out."""

    def __init__(self, max_connections: int = 64) -> None:
        self._idle: list[_Conn] = []
        self._gate = asyncio.Semaphore(max_connections)
        self._closed = False

    async def _connect(self, host: str, port: int) -> _Conn:
        reader, writer = await asyncio.open_connection(host, port, limit=1 << 22)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return _Conn(reader, writer)

    @staticmethod
    def _timeout(request: httpx.Request) -> float | None:
        timeouts = request.extensions.get("timeout") or {}
        values = [v for v in timeouts.values() if v is not None]
        return max(values) if values else None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.scheme != "http":
            raise httpx.UnsupportedProtocol("LeanTransport speaks plain http:// only")
        try:
            body = request.content
        except httpx.RequestNotRead:
            body = await request.aread()
        target = request.url.raw_path.decode("ascii")
        lines = [f"{request.method} {target} HTTP/1.1".encode()]
        lines += [k + b": " + v for k, v in request.headers.raw]
        head = b"\r\n".join(lines) + b"\r\n\r\n"
        host = request.url.host
        port = request.url.port or 80
        async with self._gate:
            for attempt in (0, 1):
                # a retry after a stale kept-alive connection always connects afresh
                conn = self._idle.pop() if self._idle and attempt == 0 else None
                fresh = conn is None
                try:
                    async with asyncio.timeout(self._timeout(request)):
                        if conn is None:
                            conn = await self._connect(host, port)
                        conn.writer.write(head + body if body else head)
                        return await self._read(request, conn, fresh)
                except TimeoutError:
                    if conn is not None:
                        conn.close()
                    raise httpx.ReadTimeout("timed out", request=request) from None
                except _Stale:
                    if conn is not None:
                        conn.close()
                    if attempt == 0:
                        continue
                    raise httpx.RemoteProtocolError("connection closed", request=request) from None
                except (OSError, asyncio.IncompleteReadError, ValueError) as e:
                    if conn is not None:
                        conn.close()
                    kind = httpx.ConnectError if fresh else httpx.ReadError
                    raise kind(repr(e), request=request) from None
        raise httpx.RemoteProtocolError("unreachable", request=request)  # pragma: no cover

    async def _read(self, request: httpx.Request, conn: _Conn, fresh: bool) -> httpx.Response:
        try:
            head = await conn.reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as e:
            if not e.partial and not fresh:
                raise _Stale from None  # a kept-alive connection the server had closed
            raise
        status_line, *header_lines = head[:-4].split(b"\r\n")
        status = int(status_line.split(b" ", 2)[1])
        headers: list[tuple[bytes, bytes]] = []
        length: int | None = None
        chunked = False
        close = False
        for line in header_lines:
            name, _, value = line.partition(b":")
            name, value = name.strip(), value.strip()
            headers.append((name, value))
            lower = name.lower()
            if lower == b"content-length":
                length = int(value)
            elif lower == b"transfer-encoding" and b"chunked" in value.lower():
                chunked = True
            elif lower == b"connection" and value.lower() == b"close":
                close = True
        reader = conn.reader
        if request.method == "HEAD" or status in NO_BODY or 100 <= status < 200:
            content = b""
        elif chunked:
            parts = []
            while True:
                size_line = await reader.readuntil(b"\r\n")
                size = int(size_line.split(b";", 1)[0], 16)
                if size == 0:
                    while (await reader.readuntil(b"\r\n")) != b"\r\n":
                        pass
                    break
                parts.append(await reader.readexactly(size))
                await reader.readexactly(2)
            content = b"".join(parts)
        elif length is not None:
            content = await reader.readexactly(length)
        else:
            content = await reader.read()
            close = True
        if close or self._closed:
            conn.close()
        else:
            conn.used = True
            self._idle.append(conn)
        return httpx.Response(
            status, headers=headers, content=content, extensions={"http_version": b"HTTP/1.1"}
        )

    async def aclose(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


class _Stale(Exception):
    pass
