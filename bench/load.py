"""A bounded, stoppable pool of async HTTP clients that drives load.

``N`` workers each hold one keep-alive connection and send requests one after another
(closed loop) for a fixed duration or a fixed number of requests; every request has a hard
timeout, and the whole run a hard deadline after which the workers are cancelled.
"""

from __future__ import annotations

import asyncio
import math
import ssl
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.transport import LeanClient, LeanTransport


class Exhausted(Exception):
    """Raised by a request function when there is no more work (e.g. no proposal left)."""


@dataclass
class Outcome:
    """What one request function call reports: the status and anything to keep."""

    status: int
    ok: bool
    data: Any = None
    count: bool = True
    """``False`` for set-up requests made inside a worker, not to be measured."""


@dataclass
class Sample:
    worker: int
    start: float
    end: float
    status: int
    ok: bool
    data: Any = None


RequestFn = Callable[[LeanClient, int, int], Awaitable[Outcome]]
"""``fn(client, worker, seq)``: make one request (or a few) and report an :class:`Outcome`."""


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0 to 100), nearest rank; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass
class LoadResult:
    concurrency: int
    samples: list[Sample]
    window: float
    """Seconds from the end of the warm-up to the last measured response."""
    statuses: Counter[int] = field(default_factory=Counter)
    client_cpu: float = 0.0
    """CPU seconds this (client) process spent during the run."""
    cancelled: int = 0

    @property
    def ok(self) -> list[Sample]:
        return [s for s in self.samples if s.ok]

    @property
    def errors(self) -> int:
        return sum(1 for s in self.samples if not s.ok)

    @property
    def throughput(self) -> float:
        return len(self.ok) / self.window if self.window > 0 else math.nan

    def latencies(self) -> list[float]:
        return [s.end - s.start for s in self.ok]

    def p(self, q: float) -> float:
        return percentile(self.latencies(), q)

    def summary(self) -> dict[str, Any]:
        return {
            "concurrency": self.concurrency,
            "requests": len(self.samples),
            "ok": len(self.ok),
            "errors": self.errors,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "window_s": round(self.window, 3),
            "throughput_per_s": round(self.throughput, 2),
            "p50_ms": round(self.p(50) * 1000, 3),
            "p90_ms": round(self.p(90) * 1000, 3),
            "p99_ms": round(self.p(99) * 1000, 3),
            "max_ms": round(self.p(100) * 1000, 3),
            "client_cpu_s": round(self.client_cpu, 3),
        }


_TLS: ssl.SSLContext | None = None


def new_client(base_url: str, timeout: float, connections: int = 1) -> httpx.AsyncClient:
    """An httpx client with keep-alive connections over the lean transport (see
    :mod:`bench.transport`), for seeding; the TLS context httpx builds for every client
    otherwise (~50 ms each, never used on plain HTTP) is shared."""
    global _TLS
    if _TLS is None:
        _TLS = ssl.create_default_context()
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=httpx.Timeout(timeout),
        transport=LeanTransport(max_connections=connections),
        verify=_TLS,
    )


async def run_load(
    base_url: str,
    fn: RequestFn,
    *,
    concurrency: int,
    duration: float | None = None,
    count: int | None = None,
    warmup: float = 0.0,
    timeout: float = 10.0,
    stop: asyncio.Event | None = None,
    on_sample: Callable[[Sample], None] | None = None,
) -> LoadResult:
    """Drive ``fn`` from ``concurrency`` workers for ``duration`` seconds (after ``warmup``)
    or until ``count`` measured requests were sent, whichever comes first.

    A request that fails on the network or times out counts as an error (status 0); a
    request function that raises :class:`Exhausted` ends that worker.
    """
    if duration is None and count is None:
        raise ValueError("give a duration or a count")
    stop = stop or asyncio.Event()
    samples: list[Sample] = []
    statuses: Counter[int] = Counter()
    issued = 0
    clients = [LeanClient(base_url, timeout) for _ in range(concurrency)]
    started = time.perf_counter()
    measure_from = started + warmup
    until = measure_from + duration if duration is not None else math.inf
    cpu0 = time.process_time()

    async def worker(index: int, client: LeanClient) -> None:
        nonlocal issued
        seq = 0
        while not stop.is_set():
            now = time.perf_counter()
            if now >= until or (count is not None and issued >= count):
                return
            warm = now < measure_from
            if not warm:
                issued += 1
            t0 = time.perf_counter()
            try:
                outcome = await fn(client, index, seq)
            except Exhausted:
                return
            except (OSError, httpx.HTTPError) as e:  # TransportError and TimeoutError are OSErrors
                outcome = Outcome(0, False, repr(e))
            t1 = time.perf_counter()
            seq += 1
            if warm or not outcome.count:
                if not outcome.count and not warm:
                    issued -= 1
                continue
            sample = Sample(index, t0, t1, outcome.status, outcome.ok, outcome.data)
            samples.append(sample)
            statuses[outcome.status] += 1
            if on_sample is not None:
                on_sample(sample)

    cancelled = 0
    try:
        tasks = [asyncio.create_task(worker(i, c)) for i, c in enumerate(clients)]
        hard = warmup + (duration if duration is not None else 3600.0) + timeout + 5.0
        done, pending = await asyncio.wait(tasks, timeout=hard)
        for task in pending:
            task.cancel()
            cancelled += 1
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        for task in done:
            task.result()
    finally:
        stop.set()
        await asyncio.gather(*(c.aclose() for c in clients), return_exceptions=True)
    measured = [s for s in samples if s.start >= measure_from]
    end = max((s.end for s in measured), default=measure_from)
    window = max(0.0, end - measure_from) if warmup else max(0.0, end - started)
    return LoadResult(
        concurrency,
        measured,
        window,
        statuses,
        client_cpu=time.process_time() - cpu0,
        cancelled=cancelled,
    )
