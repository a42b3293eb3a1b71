"""Where the time of a create goes: the route taken apart, in one process.

``python -m bench.layers`` builds prepmeet's app on a fresh data directory holding the demo
meeting and calls it through ASGI, with no socket and no server, one request at a time. It
gives the time per request, wall clock and CPU (the process's, every thread), of:

- ``echo``: ``POST /echo/def`` of :mod:`bench.echo`, the framework ceiling of figure 1;
- ``echo in prepmeet``: the same endpoint added to prepmeet's app, so behind its middleware
  and routed among its routes;
- ``create``: ``POST /api/v1/meetings/{id}/proposals`` with ``submit: true``, as in figure 1;
- ``command``: the ``draft_proposal`` command alone (authenticated actor, no HTTP);
- ``create, projector on`` and ``command, projector on``: the same with the embedded
  projector, woken after each command as the route wakes it (the others run without one).

Each measure is taken ``--rounds`` times of ``--requests`` calls after a warm-up; the median
round is reported. Under load the same layers cost more (figure 1 measures that); what this
shows is their shares, which a profile of a loaded server spreads over many frames.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from bench.seed import proposal_body

Call = Callable[[], Awaitable[int]]
"""One call of a measure, answering the HTTP status it got."""


async def asgi_post(
    app: Any, path: str, body: bytes, headers: dict[str, str], query: bytes = b""
) -> tuple[int, int]:
    """One POST through ``app``'s ASGI interface; the response's status and size."""
    raw = [(b"host", b"bench"), (b"content-type", b"application/json")]
    raw.append((b"content-length", str(len(body)).encode()))
    raw += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": raw,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }
    delivered = False
    status = size = 0

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # no disconnect: the request ends first
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        nonlocal status, size
        if message["type"] == "http.response.start":
            status = int(message["status"])
        else:
            size += len(message.get("body", b""))

    await app(scope, receive, send)
    return status, size


def poster(app: Any, path: str, body: bytes, headers: dict[str, str], query: bytes = b"") -> Call:
    """A call that POSTs ``body`` to ``path`` through ``app``."""

    async def call() -> int:
        status, _ = await asgi_post(app, path, body, headers, query)
        return status

    return call


async def measure(call: Call, requests: int, rounds: int, ok: tuple[int, ...]) -> dict[str, float]:
    """Median over ``rounds`` of the wall and CPU time per call, in µs."""
    for _ in range(max(20, requests // 10)):
        status = await call()
        if status not in ok:
            raise RuntimeError(f"warm-up answered {status}")
    walls, cpus = [], []
    for _ in range(rounds):
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(requests):
            await call()
        walls.append((time.perf_counter() - wall) / requests * 1e6)
        cpus.append((time.process_time() - cpu) / requests * 1e6)
    return {"wall_us": round(statistics.median(walls)), "cpu_us": round(statistics.median(cpus))}


def service(data_dir: Path, projector: bool) -> FastAPI:
    """prepmeet's app over ``data_dir``, rate limits off, plus the echo endpoint."""
    from api.main import create_app
    from api.settings import Settings
    from bench import echo

    settings = Settings(
        data_dir=data_dir,
        embedded_projector=projector,
        rate_limit_per_token=0,
        rate_limit_per_address=0,
    )
    app = create_app(settings)
    app.add_api_route("/__bench__/echo", echo.echo_def, methods=["POST"], include_in_schema=False)
    return app


async def run(requests: int, rounds: int) -> dict[str, Any]:
    from api.demo import load_demo
    from bench import echo

    results: dict[str, Any] = {}
    body = proposal_body("technology")
    raw = json.dumps(body).encode()
    with tempfile.TemporaryDirectory(prefix="prepmeet-layers-") as tmp, ExitStack() as stack:
        data_dir = Path(tmp)
        app = service(data_dir, projector=False)
        stack.callback(app.state.container.close)
        core = app.state.container.app
        demo = load_demo(core)
        meeting = demo["meeting_id"]
        token = demo["tokens"]["rapporteur-tech"]
        actor = str(core.authenticate(token).id)
        auth = {"Authorization": f"Bearer {token}"}
        create_path = f"/api/v1/meetings/{meeting}/proposals"
        status, size = await asgi_post(app, create_path, raw, auth)
        if status != 201:
            raise RuntimeError(f"the demo's rapporteur could not create a proposal ({status})")
        query = f"size={size}".encode()  # the echoes answer as many bytes as a create
        plan: list[tuple[str, Call, tuple[int, ...]]] = [
            ("echo", poster(echo.app, "/echo/def", raw, {}, query), (200,)),
            ("echo in prepmeet", poster(app, "/__bench__/echo", raw, {}, query), (200,)),
            ("create", poster(app, create_path, raw, auth), (201,)),
            ("command", commander(app, actor, meeting, body), (201,)),
        ]
        for name, call, ok in plan:
            results[name] = await measure(call, requests, rounds, ok)
        stack.close()

        app = service(data_dir, projector=True)
        stack.callback(app.state.container.close)
        if not app.state.container.views.wait_for(app.state.container.app.last_position(), 120):
            raise RuntimeError("the projector did not catch up")
        plan = [
            ("create, projector on", poster(app, create_path, raw, auth), (201,)),
            ("command, projector on", commander(app, actor, meeting, body), (201,)),
        ]
        for name, call, ok in plan:
            results[name] = await measure(call, requests, rounds, ok)
    return results


def commander(app: FastAPI, actor: str, meeting: str, body: dict[str, Any]) -> Call:
    """The create route's command, called directly, and the projector woken as the route
    wakes it. A call returns 201, so that :func:`measure` treats it as it treats the route;
    a refused command raises."""
    container = app.state.container

    async def call() -> int:
        container.app.draft_proposal(
            actor,
            meeting,
            body["theme"],
            body["title"],
            body["text"],
            rationale=body.get("rationale"),
            submit=True,
        )
        container.poke()
        return 201

    return call


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.layers", description=__doc__)
    parser.add_argument("--requests", type=int, default=2000, help="calls per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per measure")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    results = asyncio.run(run(max(1, args.requests), max(1, args.rounds)))
    if args.json:
        print(json.dumps(results))
        return 0
    echo_us = results["echo"]["cpu_us"]
    print(f"{'measure':24} {'wall µs':>8} {'CPU µs':>8} {'CPU / echo':>10}")
    for name, r in results.items():
        print(f"{name:24} {r['wall_us']:8} {r['cpu_us']:8} {r['cpu_us'] / echo_us:10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
