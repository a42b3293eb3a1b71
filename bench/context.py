"""The plan of a run (its sizes and durations) and the context the phases share."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import profiling
from bench.load import LoadResult, RequestFn, run_load
from bench.procs import PYTHON, HarnessError, Managed, Server, run_command, service_env
from bench.report import Report

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Plan:
    mode: str
    reps: int
    duration: float
    """Seconds of each measured load, after ``warmup``."""
    warmup: float
    clients: int = 16
    async_echo: bool = True
    """Also measure the ``async def`` echo beside each create (figure 1a)."""
    sweep: tuple[int, ...] = ()
    sweep_duration: float = 0.0
    ryw_clients: tuple[int, ...] = (16,)
    docs: bool = True
    doc_sizes: tuple[int, int] = (1000, 100)
    doc_duration: float = 0.0
    cold_samples: int = 3
    warm_downloads: int = 15
    history: tuple[int, int] | None = (2_000, 200_000)
    history_requests: int = 200
    restart_per_rep: bool = True
    """History and PostgreSQL servers start afresh for each repetition (else once each)."""
    store_seconds: float = 2.0
    postgres: bool = True

    def replace(self, **changes: Any) -> Plan:
        return Plan(**{**self.__dict__, **changes})


PLANS = {
    "smoke": Plan(
        "smoke",
        reps=3,
        duration=0.5,
        warmup=0.2,
        async_echo=False,
        docs=False,
        history=(500, 2_000),
        history_requests=20,
        restart_per_rep=False,
        store_seconds=0.5,
        postgres=False,
    ),
    "quick": Plan(
        "quick",
        reps=3,
        duration=0.8,
        warmup=0.2,
        async_echo=False,
        sweep=(1, 16),
        sweep_duration=0.7,
        doc_sizes=(200, 20),
        doc_duration=0.5,
        cold_samples=2,
        warm_downloads=5,
        history=(2_000, 20_000),
        history_requests=40,
        restart_per_rep=False,
        store_seconds=0.5,
    ),
    "full": Plan(
        "full",
        reps=3,
        duration=5.0,
        warmup=1.0,
        sweep=(1, 4, 16, 64),
        sweep_duration=3.0,
        ryw_clients=(1, 16),
        doc_duration=3.0,
        cold_samples=4,
        warm_downloads=15,
        history=(2_000, 200_000),
        history_requests=300,
        store_seconds=3.0,
    ),
}


@dataclass
class Context:
    plan: Plan
    tmp: Path
    report: Report
    out_stem: str = "bench"
    profile: set[str] = field(default_factory=set)
    profile_idle: bool = False
    procs: list[Managed] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def say(self, text: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f}s] {text}", file=sys.stderr, flush=True)

    def note(self, text: str) -> None:
        self.report.notes.append(text)

    def stop_all(self) -> None:
        """Stop every process this run started and has not stopped yet (last first)."""
        for proc in reversed(self.procs):
            with contextlib.suppress(Exception):
                proc.stop(timeout=10)
        self.procs.clear()

    async def start(self, server: Server, ready: str = "/healthz", timeout: float = 120) -> Server:
        self.procs.append(server)
        server.start()
        await asyncio.to_thread(server.wait_ready, ready, timeout)
        return server

    async def stop(self, server: Managed) -> None:
        await asyncio.to_thread(server.stop)
        with contextlib.suppress(ValueError):
            self.procs.remove(server)

    async def load(self, base_url: str, fn: RequestFn, **kwargs: Any) -> LoadResult:
        """``run_load`` with the plan's clients, warm-up and duration unless given."""
        kwargs.setdefault("concurrency", self.plan.clients)
        kwargs.setdefault("warmup", self.plan.warmup)
        if "count" not in kwargs:
            kwargs.setdefault("duration", self.plan.duration)
        result = await run_load(base_url, fn, **kwargs)
        if result.cancelled:
            self.note(f"{result.cancelled} load workers hit the hard deadline and were cancelled")
        return result

    @contextlib.asynccontextmanager
    async def profiled(self, key: str, server: Managed, rep: int = 0) -> AsyncIterator[None]:
        """With ``--profile KEY``: py-spy samples ``server`` meanwhile (first repetition)."""
        if key not in self.profile or rep != 0:
            yield
            return
        raw = self.tmp / f"profile-{key}.raw"
        spy = profiling.record(server.pid, raw, idle=self.profile_idle)
        if spy is None:
            self.say("py-spy is not installed (pip install py-spy): no profile")
        try:
            yield
        finally:
            out = RESULTS / f"{self.out_stem}-profile-{key}"
            saved = await asyncio.to_thread(profiling.finish, spy, raw, out)
            if saved is not None:
                self.say(f"profile of {key}: {saved}")

    def store_op(self, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
        """``python -m bench.store_ops ARGS`` in a process of its own; its JSON result.
        With ``--profile store-<op>``, under py-spy."""
        env = env or service_env()
        key = f"store-{args[0]}"
        argv = [PYTHON, "-m", "bench.store_ops", *args]
        raw = self.tmp / f"profile-{key}.raw"
        profiled = key in self.profile and profiling.py_spy() is not None
        if profiled:
            argv = [*profiling.record_argv(raw, self.profile_idle), "--", *argv]
            self.profile.discard(key)  # the first repetition only
        out = run_command(argv, env, self.tmp, timeout=1800)
        if profiled:
            saved = profiling.finish(None, raw, RESULTS / f"{self.out_stem}-profile-{key}")
            if saved is not None:
                self.say(f"profile of {key}: {saved}")
        lines = [line for line in out.splitlines() if line.startswith("{")]
        if not lines:
            raise HarnessError(f"bench.store_ops {args[0]} printed no result")
        result: dict[str, Any] = json.loads(lines[-1])
        return result
