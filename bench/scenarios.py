"""The request functions the load pool drives, and the projection-lag sampler."""

from __future__ import annotations

import asyncio
import bisect
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.load import Exhausted, Outcome, RequestFn, percentile
from bench.procs import HarnessError
from bench.seed import THEME_KEYS, THEMES, Person, proposal_body
from bench.transport import LeanClient, Response


def echo(path: str, body: dict[str, Any], size: int) -> RequestFn:
    """POST the same body a route takes to an echo route answering ``size`` bytes."""

    async def fn(client: LeanClient, worker: int, seq: int) -> Outcome:
        r = await client.post(path, params={"size": size}, json=body)
        r.json()
        return Outcome(r.status_code, r.status_code == 200)

    return fn


def create(
    meeting_id: str, rapporteurs: Sequence[Person], created: list[str] | None = None
) -> RequestFn:
    """Create-and-submit a proposal (``submit: true``); keeps the ids in ``created``."""
    path = f"/api/v1/meetings/{meeting_id}/proposals"

    async def fn(client: LeanClient, worker: int, seq: int) -> Outcome:
        who = rapporteurs[worker % len(rapporteurs)]
        body = proposal_body(THEME_KEYS[(worker + seq) % len(THEME_KEYS)])
        r = await client.post(path, json=body, headers=who.auth)
        if r.status_code != 201:
            return Outcome(r.status_code, False, r.text[:200])
        data = r.json()
        if created is not None:
            created.append(data["id"])
        return Outcome(201, True, int(data["position"]))

    return fn


def approve(chair: Person, pool: deque[str]) -> RequestFn:
    """Approve the next submitted proposal of ``pool``; ends the worker when none is left."""

    async def fn(client: LeanClient, worker: int, seq: int) -> Outcome:
        try:
            pid = pool.popleft()
        except IndexError:
            raise Exhausted from None
        r = await client.post(
            f"/api/v1/proposals/{pid}/approve", json={"note": "agreed"}, headers=chair.auth
        )
        if r.status_code != 200:
            return Outcome(r.status_code, False, r.text[:200])
        return Outcome(200, True, int(r.json()["position"]))

    return fn


def download(path: str, who: Person, params: dict[str, Any] | None = None) -> RequestFn:
    """GET a document (or bytes) and read the whole body."""

    async def fn(client: LeanClient, worker: int, seq: int) -> Outcome:
        r = await client.get(path, params=params, headers=who.auth)
        return Outcome(r.status_code, r.status_code == 200, len(r.content))

    return fn


def _done(r: Response) -> Response:
    """The response of a set-up request, which must succeed."""
    if r.status_code >= 300:
        raise HarnessError(f"set-up request failed: {r.status_code} {r.text[:200]}")
    return r


@dataclass
class _Lane:
    meeting: str | None = None
    items: int = 0


@dataclass
class ReadYourWrite:
    """Each worker writes into a meeting of its own (a fresh one every ``per_meeting``
    proposals, so that the first page of the list holds every item), and with ``read``
    then lists the meeting's proposals with ``?after=<position>`` and checks that the new
    proposal is there. The sample's latency is the write, or the write and the read."""

    secretariat: Person
    rapporteurs: Sequence[Person]
    read: bool
    per_meeting: int = 45
    lanes: dict[int, _Lane] = field(default_factory=dict)
    missing: int = 0

    async def _new_meeting(self, client: LeanClient, who: Person) -> str:
        sec = self.secretariat.auth
        body = {
            "title": "Read-your-writes",
            "venue": "CIPS, NUST, Islamabad",
            "starts_on": "2025-04-15",
            "ends_on": "2025-04-16",
            "hosts": ["Pakistan"],
            "ministerial": "berlin-2025",
            "themes": THEMES,
        }
        r = _done(await client.post("/api/v1/meetings", json=body, headers=sec))
        mid = str(r.json()["id"])
        enrol = {"user_id": who.id, "role": "rapporteur", "themes": THEME_KEYS}
        _done(await client.post(f"/api/v1/meetings/{mid}/participants", json=enrol, headers=sec))
        _done(await client.post(f"/api/v1/meetings/{mid}/open", headers=sec))
        return mid

    async def prepare(self, base_url: str, workers: int) -> None:
        """A meeting for each worker before the clock starts."""

        async def lane(worker: int) -> None:
            who = self.rapporteurs[worker % len(self.rapporteurs)]
            async with LeanClient(base_url, 30.0) as client:
                self.lanes[worker] = _Lane(await self._new_meeting(client, who))

        await asyncio.gather(*(lane(w) for w in range(workers)))

    async def __call__(self, client: LeanClient, worker: int, seq: int) -> Outcome:
        who = self.rapporteurs[worker % len(self.rapporteurs)]
        lane = self.lanes.setdefault(worker, _Lane())
        if lane.meeting is None or lane.items >= self.per_meeting:
            lane.meeting, lane.items = await self._new_meeting(client, who), 0
            return Outcome(201, True, count=False)
        path = f"/api/v1/meetings/{lane.meeting}/proposals"
        t0 = time.perf_counter()
        r = await client.post(path, json=proposal_body(THEME_KEYS[seq % 3]), headers=who.auth)
        write_s = time.perf_counter() - t0
        if r.status_code != 201:
            return Outcome(r.status_code, False, r.text[:200])
        lane.items += 1
        if not self.read:
            return Outcome(201, True, write_s)
        made = r.json()
        params = {"after": made["position"], "limit": 50}
        r = await client.get(path, params=params, headers=who.auth)
        if r.status_code != 200:
            return Outcome(r.status_code, False, r.text[:200])
        seen = any(item["id"] == made["id"] for item in r.json()["items"])
        if not seen:
            self.missing += 1
        return Outcome(200, seen, write_s)


# --- projection lag ------------------------------------------------------------------------


@dataclass
class ReadySample:
    sent: float
    received: float
    view_position: int


async def sample_readyz(
    base_url: str,
    done: asyncio.Event,
    wanted: Callable[[], int],
    pause: float = 0.002,
    grace: float = 5.0,
) -> list[ReadySample]:
    """Poll ``/readyz`` one request at a time until ``done``, then until the views reach
    ``wanted()`` (at most ``grace`` seconds more)."""
    out: list[ReadySample] = []
    async with LeanClient(base_url, 5.0) as client:
        until: float | None = None
        while True:
            t0 = time.perf_counter()
            r: Response | None
            try:
                r = await client.get("/readyz")
            except OSError:
                r = None
            t1 = time.perf_counter()
            if r is not None and r.status_code == 200:
                out.append(ReadySample(t0, t1, int(r.json()["view_position"])))
            if done.is_set():
                until = until or t1 + grace
                if (out and out[-1].view_position >= wanted()) or t1 > until:
                    return out
            await asyncio.sleep(pause)


def projection_lags(
    commands: list[tuple[float, int]], samples: list[ReadySample]
) -> dict[str, Any]:
    """For each command (response time, position): when the views first showed it.

    The views reached the position while the first ``/readyz`` that shows it was in flight:
    the estimate takes the middle of that request, the bound its end (both from the moment
    the command's response arrived, and 0 when the views were there first).
    """
    best: list[int] = []
    top = -1
    for s in samples:
        top = max(top, s.view_position)
        best.append(top)
    estimate: list[float] = []
    upper: list[float] = []
    unseen = 0
    for t_resp, position in commands:
        i = bisect.bisect_left(best, position)
        if i >= len(samples):
            unseen += 1
            continue
        s = samples[i]
        estimate.append(max(0.0, (s.sent + s.received) / 2 - t_resp))
        upper.append(max(0.0, s.received - t_resp))
    rtt = [s.received - s.sent for s in samples]
    return {
        "commands": len(commands),
        "unseen": unseen,
        "samples": len(samples),
        "p50_ms": percentile(estimate, 50) * 1000,
        "p99_ms": percentile(estimate, 99) * 1000,
        "max_ms": percentile(estimate, 100) * 1000,
        "p99_upper_ms": percentile(upper, 99) * 1000,
        "readyz_rtt_p50_ms": percentile(rtt, 50) * 1000,
        "readyz_rtt_p99_ms": percentile(rtt, 99) * 1000,
    }
