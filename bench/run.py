"""``python -m bench [--quick | --smoke]``: measure prepmeet against its ceilings.

Every figure is measured in each repetition together with its ceiling (or baseline), on the
same machine and with the same server settings, and each ratio is taken within its
repetition. ``bench/README.md`` says what each figure is and how it is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from bench.context import PLANS, RESULTS, Context
from bench.phases import history_phase, postgres_phase, sqlite_phase
from bench.procs import REPO, HarnessError, find_postgres, uvicorn_server
from bench.report import Report, markdown, table

__all__ = ["main"]


def git_commit() -> str | None:
    with contextlib.suppress(Exception):
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPO,
            capture_output=True,
            text=True,
        ).stdout.strip()
        return head + ("+modified" if dirty else "") if head else None
    return None


@contextlib.asynccontextmanager
async def phase(ctx: Context, name: str) -> AsyncIterator[None]:
    t0 = time.monotonic()
    try:
        yield
    finally:
        ctx.report.extra.setdefault("phase_seconds", {})[name] = round(time.monotonic() - t0, 1)


async def run_all(ctx: Context, postgres: str | None) -> None:
    async with phase(ctx, "sqlite"):
        echo = await ctx.start(uvicorn_server("echo", "bench.echo:app", ctx.tmp))
        try:
            await sqlite_phase(ctx, echo)
        finally:
            await ctx.stop(echo)
    if ctx.plan.history is not None:
        async with phase(ctx, "history"):
            await history_phase(ctx)
    if ctx.plan.postgres:
        if postgres is None:
            ctx.note("no PostgreSQL server answered: figure 10 not measured")
            ctx.say("no PostgreSQL server answers: figure 10 skipped")
        else:
            async with phase(ctx, "postgres"):
                await postgres_phase(ctx, postgres)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Measure prepmeet against its ceilings; results in bench/results/.",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="a shorter run (under 2 minutes)")
    mode.add_argument(
        "--smoke", action="store_true", help="start, measure a little, exit (under a minute)"
    )
    parser.add_argument("--reps", type=int, help="repetitions (default 3)")
    parser.add_argument("--no-postgres", action="store_true", help="skip figure 10")
    parser.add_argument(
        "--profile",
        default="",
        metavar="KEYS",
        help="comma-separated figure keys to profile with py-spy in their first repetition: "
        "1 2 11 3 3-1 4-json 4-pdf 5 7-<events> 10-1 10-2, and store-read (raw read and "
        "rebuild), store-save, store-seed",
    )
    parser.add_argument(
        "--profile-idle",
        action="store_true",
        help="profiles also sample waiting threads (wall clock), not only running ones",
    )
    parser.add_argument("--out", type=Path, help="the results file (default bench/results/…)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data directory")
    parser.add_argument("--strict", action="store_true", help="exit 3 when a target is missed")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    plan = PLANS[mode]
    if args.reps:
        plan = plan.replace(reps=max(1, args.reps))
    if args.no_postgres:
        plan = plan.replace(postgres=False)
    host = socket.gethostname().split(".")[0] or "host"
    stem = f"{dt.date.today().isoformat()}-{host}" + ("" if mode == "full" else f"-{mode}")
    if args.out:
        out = args.out
    elif mode == "smoke":
        out = Path(tempfile.gettempdir()) / f"prepmeet-bench-{stem}.json"
    else:
        out = RESULTS / f"{stem}.json"
    report = Report()
    report.meta = {
        "mode": mode,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "host": host,
        "cpus": os.cpu_count(),
        "load_average_at_start": list(os.getloadavg()),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "commit": git_commit(),
        "plan": plan.__dict__,
        "servers": "prepmeet serve (SQLite file or PostgreSQL) and the ceiling apps under "
        "uvicorn[standard] (uvloop, httptools), same workers, no access log; "
        "PREPMEET_RATE_LIMIT_PER_TOKEN=0, PREPMEET_RATE_LIMIT_PER_ADDRESS=0, other "
        "settings at their defaults",
        "client": "bench.transport.LeanClient (plain HTTP/1.1), one keep-alive "
        "connection per client, closed loop",
    }

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    tmp = Path(tempfile.mkdtemp(prefix="prepmeet-bench-"))
    ctx = Context(plan, tmp, report, out_stem=out.stem, profile_idle=args.profile_idle)
    ctx.profile = {k.strip() for k in args.profile.split(",") if k.strip()}
    if ctx.profile:
        RESULTS.mkdir(parents=True, exist_ok=True)
    postgres = find_postgres() if plan.postgres else None
    status = 0
    started = time.monotonic()
    try:
        ctx.say(f"prepmeet bench ({mode}); data in {tmp}")
        asyncio.run(run_all(ctx, postgres))
    except KeyboardInterrupt:
        print("bench: interrupted; stopping what it started", file=sys.stderr)
        status = 130
    except HarnessError as e:
        print(f"bench: {e}", file=sys.stderr)
        status = 1
    except Exception:
        traceback.print_exc()
        print("bench: failed; stopping what it started", file=sys.stderr)
        status = 1
    finally:
        ctx.stop_all()
        signal.signal(signal.SIGTERM, previous)
        if args.keep or status:
            print(f"bench: data and server logs kept in {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    report.meta["seconds"] = round(time.monotonic() - started, 1)
    if status:
        return status
    report.write(out)
    print(table(report))
    for note in report.notes:
        print(f"note: {note}")
    print(f"\nresults: {out} ({report.meta['seconds']:.0f} s)")
    if mode != "smoke":
        out.with_suffix(".md").write_text(markdown(report) + "\n")
        if report.sweep:
            try:
                from bench.plot import plot

                print(f"plot: {plot(out)}")
            except ImportError:
                print("plot: matplotlib is not installed (pip install matplotlib)")
    if args.strict and any(f.met is False for f in report.figures):
        return 3
    return 0
