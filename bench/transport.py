"""Plain HTTP/1.1 with keep-alive over asyncio streams, for load generation.

httpx's default transport (httpcore over anyio, h11) spends about 2 ms of CPU per request
on this kind of machine, several times what the server spends on an echo; and httpx's
client itself (URLs, headers, cookies, requests and responses as objects) costs about
0.5 ms more. On two cores the client would then take a large share of the machine, and
every ceiling would partly be a ceiling of the client.

- :class:`Origin` holds the keep-alive connections to one server and makes exchanges of
  raw bytes on them: the part both clients share.
- :class:`LeanTransport` keeps httpx's client API over it
  (``httpx.AsyncClient(transport=LeanTransport())``), for seeding and set-up.
- :class:`LeanClient` is the load generator's client: ``get``/``post`` with JSON bodies,
  query parameters and headers, and a small response; a few tens of microseconds a request.

Plain ``http://`` only; responses with ``Content-Length``, chunked or read-to-close bodies.
Failures are :class:`TransportError` (an ``OSError``) or ``TimeoutError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json as jsonlib
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx

NO_BODY = {204, 304}

Headers = list[tuple[bytes, bytes]]


class TransportError(OSError):
    """A request that got no complete response."""


class ConnectFailed(TransportError):
    """No connection could be made."""


class ReadFailed(TransportError):
    """The connection failed while the request was sent or its response read."""


class ConnectionLost(TransportError):
    """The server closed the connection before it answered."""


class _Stale(Exception):
    """A kept-alive connection the server had closed before this request."""


@dataclass
class _Conn:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


class Origin:
    """Keep-alive connections to one ``host:port``, at most ``max_connections`` in use at
    once, reused last-in first-out."""

    def __init__(self, host: str, port: int, max_connections: int = 64) -> None:
        self.host, self.port = host, port
        self.host_header = f"{host}:{port}".encode("ascii")
        self._idle: list[_Conn] = []
        self._gate = asyncio.Semaphore(max_connections)
        self._closed = False

    async def _connect(self) -> _Conn:
        reader, writer = await asyncio.open_connection(self.host, self.port, limit=1 << 22)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return _Conn(reader, writer)

    async def exchange(
        self, method: str, data: bytes, timeout: float | None
    ) -> tuple[int, Headers, bytes]:
        """Send ``data`` (the request's head and body) and read the response: its status,
        headers and body. A kept-alive connection found closed is replaced once."""
        async with self._gate:
            for attempt in (0, 1):
                # a retry after a stale kept-alive connection always connects afresh
                conn = self._idle.pop() if self._idle and attempt == 0 else None
                fresh = conn is None
                try:
                    async with asyncio.timeout(timeout):
                        if conn is None:
                            try:
                                conn = await self._connect()
                            except OSError as e:
                                raise ConnectFailed(repr(e)) from None
                        conn.writer.write(data)
                        return await self._read(method, conn, fresh)
                except TimeoutError:
                    if conn is not None:
                        conn.close()
                    raise TimeoutError("timed out") from None
                except ConnectFailed:
                    raise
                except _Stale:
                    if conn is not None:
                        conn.close()
                    if attempt == 0:
                        continue
                    raise ConnectionLost("connection closed") from None
                except asyncio.IncompleteReadError:
                    if conn is not None:
                        conn.close()
                    raise ConnectionLost("connection closed before the response ended") from None
                except (OSError, ValueError) as e:
                    if conn is not None:
                        conn.close()
                    raise ReadFailed(repr(e)) from None
        raise ConnectionLost("unreachable")  # pragma: no cover

    async def _read(self, method: str, conn: _Conn, fresh: bool) -> tuple[int, Headers, bytes]:
        try:
            head = await conn.reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as e:
            if not e.partial and not fresh:
                raise _Stale from None
            raise
        status_line, *header_lines = head[:-4].split(b"\r\n")
        status = int(status_line.split(b" ", 2)[1])
        headers: Headers = []
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
        if method == "HEAD" or status in NO_BODY or 100 <= status < 200:
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
            self._idle.append(conn)
        return status, headers, content

    def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


class LeanTransport(httpx.AsyncBaseTransport):
    """httpx's transport interface over :class:`Origin` (one per host and port)."""

    def __init__(self, max_connections: int = 64) -> None:
        self._max = max_connections
        self._origins: dict[tuple[str, int], Origin] = {}

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
        key = (request.url.host, request.url.port or 80)
        origin = self._origins.get(key)
        if origin is None:
            origin = self._origins[key] = Origin(*key, max_connections=self._max)
        try:
            status, headers, content = await origin.exchange(
                request.method, head + body, self._timeout(request)
            )
        except TimeoutError:
            raise httpx.ReadTimeout("timed out", request=request) from None
        except ConnectFailed as e:
            raise httpx.ConnectError(str(e), request=request) from None
        except ConnectionLost as e:
            raise httpx.RemoteProtocolError(str(e), request=request) from None
        except ReadFailed as e:
            raise httpx.ReadError(str(e), request=request) from None
        return httpx.Response(
            status, headers=headers, content=content, extensions={"http_version": b"HTTP/1.1"}
        )

    async def aclose(self) -> None:
        origins, self._origins = self._origins, {}
        for origin in origins.values():
            origin.close()


class Response:
    """A response as the load generator needs it: status, headers, body."""

    __slots__ = ("_raw", "content", "status_code")

    def __init__(self, status_code: int, headers: Headers, content: bytes) -> None:
        self.status_code = status_code
        self._raw = headers
        self.content = content

    @property
    def headers(self) -> dict[str, str]:
        """The headers, names in lower case (the last of a repeated name)."""
        return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in self._raw}

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return jsonlib.loads(self.content)


class LeanClient:
    """One keep-alive connection to ``base_url``, one request at a time; what the load
    generator's workers send with.

    Requests carry ``Host``, ``Accept``, ``Content-Length`` (and ``Content-Type`` with a
    JSON body, encoded compactly) and the caller's headers; ``timeout`` bounds each whole
    request.
    """

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or parts.hostname is None:
            raise ValueError(f"LeanClient speaks plain http:// only, not {base_url!r}")
        self._origin = Origin(parts.hostname, parts.port or 80, max_connections=1)
        self._prefix = parts.path.rstrip("/")
        self._host = b"Host: " + self._origin.host_header + b"\r\nAccept: */*\r\n"
        self.timeout = timeout

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        target = self._prefix + path
        if params:
            target += ("&" if "?" in target else "?") + urlencode(params)
        lines = [f"{method} {target} HTTP/1.1\r\n".encode("ascii"), self._host]
        body = b""
        if json is not None:
            body = jsonlib.dumps(json, ensure_ascii=False, separators=(",", ":")).encode()
            lines.append(b"Content-Type: application/json\r\n")
        if body or method in ("POST", "PUT", "PATCH"):
            lines.append(b"Content-Length: %d\r\n" % len(body))
        if headers:
            lines += [f"{k}: {v}\r\n".encode("latin-1") for k, v in headers.items()]
        lines += [b"\r\n", body]
        status, raw, content = await self._origin.exchange(method, b"".join(lines), self.timeout)
        return Response(status, raw, content)

    async def get(
        self,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        return await self.request("GET", path, params=params, headers=headers)

    async def post(
        self,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        return await self.request("POST", path, json=json, params=params, headers=headers)

    async def aclose(self) -> None:
        self._origin.close()

    async def __aenter__(self) -> LeanClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
