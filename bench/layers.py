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
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from bench.seed import proposal_body

Call = Callable[[], Awaitable[int]]
LAST_SIZE = [0]


async def asgi_call(
    app: Any, path: str, body: bytes, headers: dict[str, str], query: bytes = b""
) -> int:
    """One POST through ``app``'s ASGI interface; the response's status (its body's length
    goes to :data:`LAST_SIZE`)."""
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
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # no disconnect: the request ends first
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])
            LAST_SIZE[0] = 0
        else:
            LAST_SIZE[0] += len(message.get("body", b""))

    await app(scope, receive, send)
    return status


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
    with tempfile.TemporaryDirectory(prefix="prepmeet-layers-") as tmp:
        data_dir = Path(tmp)
        app = service(data_dir, projector=False)
        core = app.state.container.app
        demo = load_demo(core)
        meeting = demo["meeting_id"]
        token = demo["tokens"]["rapporteur-tech"]
        actor = str(core.authenticate(token).id)
        body = proposal_body("technology")
        raw = json.dumps(body).encode()
        auth = {"Authorization": f"Bearer {token}"}
        create_path = f"/api/v1/meetings/{meeting}/proposals"
        if await asgi_call(app, create_path, raw, auth) != 201:
            raise RuntimeError("the demo's rapporteur could not create a proposal")
        size = f"size={LAST_SIZE[0]}".encode()  # the echoes answer as many bytes as a create

        command = commander(app, actor, meeting, body)
        plan: list[tuple[str, Call, tuple[int, ...]]] = [
            ("echo", lambda: asgi_call(echo.app, "/echo/def", raw, {}, size), (200,)),
            ("echo in prepmeet", lambda: asgi_call(app, "/__bench__/echo", raw, {}, size), (200,)),
            ("create", lambda: asgi_call(app, create_path, raw, auth), (201,)),
            ("command", command, (201,)),
        ]
        try:
            for name, call, ok in plan:
                results[name] = await measure(call, requests, rounds, ok)
        finally:
            app.state.container.close()

        app = service(data_dir, projector=True)
        core = app.state.container.app
        container = app.state.container
        if not container.views.wait_for(core.last_position(), 120):
            raise RuntimeError("the projector did not catch up")

        command_poked = commander(app, actor, meeting, body)
        try:
            results["create, projector on"] = await measure(
                lambda: asgi_call(app, create_path, raw, auth), requests, rounds, (201,)
            )
            results["command, projector on"] = await measure(
                command_poked, requests, rounds, (201,)
            )
        finally:
            container.close()
    return results


def commander(app: FastAPI, actor: str, meeting: str, body: dict[str, Any]) -> Call:
    """The create route's command, called directly, and the projector woken as the route
    wakes it; a call answers 201 as the route does."""
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
