"""Structured logs, request metrics in Prometheus format, and the access log."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
access_log = logging.getLogger("prepmeet.access")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and any extra fields."""

    RESERVED = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "color_message"}

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in self.RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def logging_config(level: str = "info") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for the server: JSON lines on standard error."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "api.observability.JsonFormatter"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": level.upper()},
        "loggers": {
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": False, "level": "WARNING"},
        },
    }


class Metrics:
    """Request counts and latency histograms by route and status, kept in memory."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self.latency: dict[tuple[str, str], list[float]] = {}
        self.latency_sum: dict[tuple[str, str], float] = defaultdict(float)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(method, route, status)] += 1
            counts = self.latency.setdefault((method, route), [0.0] * (len(BUCKETS) + 1))
            for i, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    counts[i] += 1
            counts[-1] += 1
            self.latency_sum[(method, route)] += seconds

    def exposition(self, gauges: dict[str, tuple[str, float]]) -> str:
        lines = [
            "# HELP prepmeet_http_requests_total HTTP requests by method, route and status.",
            "# TYPE prepmeet_http_requests_total counter",
        ]
        with self._lock:
            for (method, route, status), n in sorted(self.requests.items()):
                lines.append(
                    f'prepmeet_http_requests_total{{method="{method}",route="{route}",'
                    f'status="{status}"}} {n}'
                )
            lines += [
                "# HELP prepmeet_http_request_duration_seconds Time to answer HTTP requests.",
                "# TYPE prepmeet_http_request_duration_seconds histogram",
            ]
            for (method, route), counts in sorted(self.latency.items()):
                labels = f'method="{method}",route="{route}"'
                for bound, seen in zip(BUCKETS, counts, strict=False):
                    lines.append(
                        f'prepmeet_http_request_duration_seconds_bucket{{{labels},le="{bound}"}} '
                        f"{int(seen)}"
                    )
                lines.append(
                    f'prepmeet_http_request_duration_seconds_bucket{{{labels},le="+Inf"}} '
                    f"{int(counts[-1])}"
                )
                lines.append(
                    f"prepmeet_http_request_duration_seconds_sum{{{labels}}} "
                    f"{self.latency_sum[(method, route)]:.6f}"
                )
                lines.append(
                    f"prepmeet_http_request_duration_seconds_count{{{labels}}} {int(counts[-1])}"
                )
        for name, (help_text, value) in gauges.items():
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name} {value:g}"]
        return "\n".join(lines) + "\n"


def flat_routes(routes: Sequence[Any]) -> list[Any]:
    """The routes, with the routers that FastAPI includes as a whole opened up."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI copies included routes into the app's list
        return list(routes)
    return list(iter_route_contexts(routes))


def route_template(app: Any, scope: Scope) -> str:
    """The path template of the route that serves ``scope`` (never the concrete path).

    The router records the route it chose in the scope; without it (a request that no route
    served, or one refused before routing) the routes are matched again."""
    chosen = scope.get("route")
    path = getattr(chosen, "path", None)
    if isinstance(path, str) and path:
        return path
    for route in flat_routes(getattr(app, "routes", [])):
        match, _ = route.matches(scope)
        if match == Match.FULL:
            return str(getattr(route, "path", None) or "unmatched")
    return "unmatched"


class AccessLog:
    """Log every request as one structured line and feed the metrics."""

    def __init__(self, app: ASGIApp, metrics: Metrics, router: Any) -> None:
        self.app = app
        self.metrics = metrics
        self.router = router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            elapsed = time.perf_counter() - started
            route = route_template(self.router, scope)
            self.metrics.observe(scope["method"], route, status, elapsed)
            state = scope.get("state", {})
            access_log.info(
                "%s %s %s",
                scope["method"],
                route,
                status,
                extra={
                    "request_id": state.get("request_id"),
                    "user_id": state.get("user_id"),
                    "method": scope["method"],
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                },
            )
