"""Crash safety of a real ``prepmeet serve``: SIGKILL under write load loses and doubles nothing.

Eight concurrent clients create proposals, each request with its own ``Idempotency-Key``,
while the server is killed with SIGKILL at (seeded) random moments and restarted on the
same store. Every request that got no answer is retried with the same key and body until
it is answered. Then:

- every write that was acknowledged with a 2xx is in the store and in the views (0 lost);
- every title (one per request) is there exactly once, in the views and in the event log
  (0 duplicates), with the id that the acknowledgement named;
- the views equal a rebuild: the same reads before and after ``prepmeet projections
  rebuild`` run with the server stopped.

On the SQLite file and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

PREPMEET = Path(sys.executable).parent / "prepmeet"
CLIENTS = 8
PER_CLIENT = 128  # 8 x 128 = 1,024 proposal creations
KILL_ROUNDS = 6
SEED = 20250415
THEME = "technology"
START_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(data_dir: Path, database_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREPMEET_")}
    env.update(
        PREPMEET_DATA_DIR=str(data_dir),
        PREPMEET_RATE_LIMIT_PER_TOKEN="0",
        PREPMEET_RATE_LIMIT_PER_ADDRESS="0",
        PREPMEET_LOG_LEVEL="warning",
    )
    if database_url:
        env["PREPMEET_DATABASE_URL"] = database_url
    return env


def run_cli(env: dict[str, str], cwd: Path, *args: str) -> str:
    done = subprocess.run(
        [str(PREPMEET), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, f"prepmeet {' '.join(args)} failed: {done.stderr[-2000:]}"
    return done.stdout


class Server:
    """One ``prepmeet serve`` process at a time on a fixed port and store."""

    def __init__(self, env: dict[str, str], cwd: Path, port: int) -> None:
        self.env = env
        self.cwd = cwd
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.log = cwd / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def spawn(self) -> None:
        assert self.proc is None
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [str(PREPMEET), "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                env=self.env,
                cwd=self.cwd,
                stdout=out,
                stderr=out,
            )
        self.starts += 1

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""

    async def start(self) -> None:
        """Start the server and return once it answers ``/healthz``."""
        self.spawn()
        deadline = time.monotonic() + START_TIMEOUT
        async with httpx.AsyncClient(base_url=self.base_url, timeout=2) as probe:
            while True:
                assert self.proc is not None
                if self.proc.poll() is not None:
                    pytest.fail(f"the server exited at start:\n{self.log_tail()}")
                try:
                    if (await probe.get("/healthz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"the server did not start in time:\n{self.log_tail()}")
                await asyncio.sleep(0.05)  # polling the process start, not a projection

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        assert self.proc.returncode == -signal.SIGKILL
        self.proc = None

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None


@dataclass
class Tally:
    acknowledged: int = 0
    unanswered: int = 0
    retried: int = 0
    kills: int = 0
    refused: list[str] = field(default_factory=list)
    ids: dict[str, str] = field(default_factory=dict)  # title -> id acknowledged
    failed_at: dict[str, int] = field(default_factory=dict)  # title -> kill round it met
    restarted_at: list[int] = field(default_factory=list)  # store position at each restart


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def seed(server: Server, secretariat: str) -> tuple[str, list[str]]:
    """A meeting, open, with ``CLIENTS`` rapporteurs of the theme; their tokens."""
    async with httpx.AsyncClient(base_url=server.base_url, headers=auth(secretariat)) as c:
        r = await c.post(
            "/api/v1/meetings",
            json={
                "title": "Crash-safety preparatory meeting",
                "venue": "CIPS, NUST, Islamabad",
                "starts_on": "2025-04-15",
                "ends_on": "2025-04-16",
                "hosts": ["Pakistan", "Republic of Korea"],
                "ministerial": "berlin-2025",
                "themes": [{"key": THEME, "title": "Use of technology in peacekeeping"}],
            },
        )
        assert r.status_code == 201, r.text
        meeting = r.json()["id"]
        tokens = []
        for i in range(CLIENTS):
            r = await c.post(
                "/api/v1/users", json={"name": f"Rapporteur {i}", "delegation": f"Delegation {i}"}
            )
            assert r.status_code == 201, r.text
            tokens.append(r.json()["token"])
            r = await c.post(
                f"/api/v1/meetings/{meeting}/participants",
                json={"user_id": r.json()["id"], "role": "rapporteur", "themes": [THEME]},
            )
            assert r.status_code == 201, r.text
        r = await c.post(f"/api/v1/meetings/{meeting}/open")
        assert r.status_code == 200, r.text
    return meeting, tokens


def title_of(client: int, n: int) -> str:
    return f"Proposal {client:02d}-{n:04d}"


async def writer(
    server: Server,
    meeting: str,
    token: str,
    client: int,
    up: asyncio.Event,
    progress: asyncio.Event,
    tally: Tally,
) -> None:
    """Create ``PER_CLIENT`` proposals; retry each unanswered one with the same key and body."""
    rng = random.Random(SEED + client)
    timeout = httpx.Timeout(30.0, connect=5.0)
    async with httpx.AsyncClient(base_url=server.base_url, timeout=timeout) as c:
        for n in range(PER_CLIENT):
            title = title_of(client, n)
            body = {
                "theme": THEME,
                "title": title,
                "text": f"Text of {title}: "
                + "strengthen the mission's situational awareness. " * rng.randint(1, 6),
                "submit": n % 3 == 0,
            }
            headers = {**auth(token), "Idempotency-Key": f"crash-{client}-{n}"}
            attempts = 0
            while True:
                await up.wait()
                if attempts:
                    tally.retried += 1
                try:
                    r = await c.post(
                        f"/api/v1/meetings/{meeting}/proposals", json=body, headers=headers
                    )
                except httpx.TransportError:
                    if attempts == 0:
                        tally.unanswered += 1
                        tally.failed_at[title] = tally.kills
                    attempts += 1
                    assert attempts < 50, f"{title}: no answer after 50 attempts"
                    continue
                break
            if not 200 <= r.status_code < 300:
                tally.refused.append(f"{title}: {r.status_code} {r.text[:300]}")
                continue
            tally.acknowledged += 1
            got = r.json()
            assert got["title"] == title
            tally.ids[title] = got["id"]
            progress.set()


async def killer(server: Server, up: asyncio.Event, progress: asyncio.Event, tally: Tally) -> None:
    """SIGKILL the server after a (seeded) random number of answers and a random delay."""
    rng = random.Random(SEED)
    total = CLIENTS * PER_CLIENT
    points = sorted(rng.sample(range(40, total - 80), KILL_ROUNDS))
    for point in points:
        while tally.acknowledged < point:
            progress.clear()
            await progress.wait()
        await asyncio.sleep(rng.uniform(0.0, 0.05))  # a random moment amid the requests
        up.clear()
        server.kill()
        tally.kills += 1
        await server.start()
        async with httpx.AsyncClient(base_url=server.base_url) as probe:
            r = await probe.get("/readyz")  # before any client writes again
            assert r.status_code == 200, r.text
            tally.restarted_at.append(r.json()["store_position"])
        up.set()


async def all_pages(c: httpx.AsyncClient, path: str, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        query = {**params, "limit": 200, **({"cursor": cursor} if cursor else {})}
        r = await c.get(path, params=query)
        assert r.status_code == 200, r.text
        page = r.json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


async def event_feed(c: httpx.AsyncClient) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    since = 0
    while True:
        r = await c.get("/api/v1/events", params={"since": since, "limit": 200})
        assert r.status_code == 200, r.text
        page = r.json()["items"]
        if not page:
            return items
        items += page
        since = page[-1]["position"]


async def views(server: Server, meeting: str, secretariat: str, rapporteur: str) -> dict[str, Any]:
    """What the views answer: every list and document that the workload touched."""
    async with httpx.AsyncClient(base_url=server.base_url, headers=auth(secretariat)) as c:
        meetings = await all_pages(c, "/api/v1/meetings")
        proposals = await all_pages(c, f"/api/v1/meetings/{meeting}/proposals")
        submitted = await all_pages(c, f"/api/v1/meetings/{meeting}/proposals", status="submitted")
        r = await c.get(f"/api/v1/meetings/{meeting}/recommendations", params={"format": "json"})
        assert r.status_code == 200, r.text
        document = r.json()
        r = await c.get("/api/v1/me", headers=auth(rapporteur))
        assert r.status_code == 200, r.text
        me = r.json()
        r = await c.get("/readyz")
        assert r.status_code == 200, r.text
        ready = r.json()
    return {
        "meetings": meetings,
        "proposals": proposals,
        "submitted": submitted,
        "document": document,
        "me": me,
        "ready": ready,
    }


async def scenario(tmp_path: Path, database_url: str | None, label: str) -> dict[str, int]:
    data_dir = tmp_path / "data"
    env = server_env(data_dir, database_url)
    out = run_cli(env, tmp_path, "users", "create", "--name", "Amina Qureshi",
                  "--delegation", "UN DPO", "--secretariat")  # fmt: skip
    secretariat = out.strip().splitlines()[-1]
    server = Server(env, tmp_path, free_port())
    tally = Tally()
    try:
        await server.start()
        meeting, tokens = await seed(server, secretariat)
        up, progress = asyncio.Event(), asyncio.Event()
        up.set()
        started = time.perf_counter()
        await asyncio.wait_for(
            asyncio.gather(
                killer(server, up, progress, tally),
                *(
                    writer(server, meeting, tokens[i], i, up, progress, tally)
                    for i in range(CLIENTS)
                ),
            ),
            timeout=600,
        )
        elapsed = time.perf_counter() - started
        assert not tally.refused, tally.refused[:5]
        total = CLIENTS * PER_CLIENT
        assert tally.acknowledged == total

        # --- what the server holds, after the last crash ---------------------------------
        before = await views(server, meeting, secretariat, tokens[0])
        listed = Counter(p["title"] for p in before["proposals"])
        by_title = {p["title"]: p["id"] for p in before["proposals"]}
        async with httpx.AsyncClient(base_url=server.base_url, headers=auth(secretariat)) as c:
            feed = await event_feed(c)
            drafted = Counter(e["data"]["title"] for e in feed if e["type"] == "ProposalDrafted")
            # single-object reads come from the event store itself
            sample = random.Random(SEED).sample(sorted(tally.ids), 50)
            for title in sample:
                r = await c.get(f"/api/v1/proposals/{tally.ids[title]}")
                assert r.status_code == 200 and r.json()["title"] == title, r.text
            # an unanswered write recorded before its kill was answered by a replay
            replayed = 0
            for title, round_ in tally.failed_at.items():
                r = await c.get(f"/api/v1/proposals/{tally.ids[title]}/history")
                assert r.status_code == 200, r.text
                first = r.json()["items"][0]
                assert first["type"] == "ProposalDrafted"
                replayed += first["position"] <= tally.restarted_at[round_ - 1]
        lost = sum(1 for title, pid in tally.ids.items() if by_title.get(title) != pid)
        lost_in_log = sum(1 for title in tally.ids if drafted[title] == 0)
        duplicates = sum(n - 1 for n in listed.values() if n > 1)
        duplicates_in_log = sum(n - 1 for n in drafted.values() if n > 1)
        strangers = set(listed) - set(tally.ids)

        # --- the views equal a rebuild of them from the log --------------------------------
        server.stop()
        rebuilt = run_cli(env, tmp_path, "projections", "rebuild")
        assert "views rebuilt to position" in rebuilt
        await server.start()
        after = await views(server, meeting, secretariat, tokens[0])
        server.stop()

        print(
            f"\n[crash-safety {label}] writes: {total}, acknowledged: {tally.acknowledged}, "
            f"unanswered: {tally.unanswered} (of which recorded before the kill and answered "
            f"by a replay: {replayed}), retried: {tally.retried}, lost: {lost} "
            f"(in the log: {lost_in_log}), duplicates: {duplicates} "
            f"(in the log: {duplicates_in_log}), kill rounds: {tally.kills}, "
            f"server starts: {server.starts}, load time: {elapsed:.1f} s, "
            f"views equal rebuild: {before == after}"
        )
        assert tally.kills >= 5
        assert tally.unanswered >= 1, "no kill caught a request in flight"
        assert tally.retried >= tally.unanswered
        assert lost == 0 and lost_in_log == 0
        assert duplicates == 0 and duplicates_in_log == 0
        assert not strangers
        assert len(before["proposals"]) == total
        assert sum(drafted.values()) == total
        assert len(before["submitted"]) == sum(1 for n in range(PER_CLIENT) if n % 3 == 0) * CLIENTS
        assert before["ready"]["lag"] == 0
        assert before == after, "the views differ from a rebuild of them"
        return {
            "acknowledged": tally.acknowledged,
            "lost": lost + lost_in_log,
            "duplicates": duplicates + duplicates_in_log,
            "kills": tally.kills,
        }
    finally:
        server.stop()


async def test_sigkill_under_load_loses_and_duplicates_nothing_on_sqlite(tmp_path: Path) -> None:
    counts = await scenario(tmp_path, None, "sqlite")
    assert counts["acknowledged"] == CLIENTS * PER_CLIENT
    assert (counts["lost"], counts["duplicates"]) == (0, 0)


async def test_sigkill_under_load_loses_and_duplicates_nothing_on_postgres(
    tmp_path: Path, postgres_url: str
) -> None:
    counts = await scenario(tmp_path, postgres_url, "postgres")
    assert counts["acknowledged"] == CLIENTS * PER_CLIENT
    assert (counts["lost"], counts["duplicates"]) == (0, 0)
