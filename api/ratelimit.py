"""Per-token and per-address rate limits (token buckets), answered with 429 problems."""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time

from starlette.types import ASGIApp, Receive, Scope, Send

from api.problems import PROBLEM_MEDIA_TYPE

EXEMPT = ("/healthz", "/readyz", "/metrics")


class Buckets:
    """Token buckets keyed by a string: ``rate`` per second, up to ``burst`` at once."""

    def __init__(self, rate: float, burst: int, max_keys: int = 100_000) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._state: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str, now: float | None = None) -> float:
        """0 when the request may go ahead, else the seconds to wait before retrying."""
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._state.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._state[key] = (tokens - 1.0, now)
                wait = 0.0
            else:
                self._state[key] = (tokens, now)
                wait = (1.0 - tokens) / self.rate
            if len(self._state) > self.max_keys:
                self._state.clear()
        return wait


class RateLimit:
    def __init__(self, app: ASGIApp, per_token: float, per_address: float, burst: int) -> None:
        self.app = app
        self.tokens = Buckets(per_token, burst) if per_token > 0 else None
        self.addresses = Buckets(per_address, burst * 2) if per_address > 0 else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT:
            await self.app(scope, receive, send)
            return
        wait = 0.0
        if self.addresses is not None:
            client = scope.get("client") or ("unknown", 0)
            wait = self.addresses.take(f"addr:{client[0]}")
        if not wait and self.tokens is not None:
            for name, value in scope["headers"]:
                if name == b"authorization":
                    key = hashlib.sha256(value).hexdigest()
                    wait = self.tokens.take(key)
                    break
        if wait:
            retry = str(max(1, math.ceil(wait)))
            body = json.dumps(
                {
                    "type": "urn:prepmeet:problem:rate-limited",
                    "title": "Too many requests",
                    "status": 429,
                    "detail": f"rate limit reached; retry after {retry} s",
                }
            ).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 429,
                    "headers": [
                        (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                        (b"content-length", str(len(body)).encode()),
                        (b"retry-after", retry.encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)
