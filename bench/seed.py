"""Seeding through the public interfaces: users with ``prepmeet users create`` (the
secretariat) and over HTTP (everyone else), meetings, participants and proposals over HTTP."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from bench.load import new_client
from bench.procs import HarnessError, prepmeet_argv, run_command

T = TypeVar("T")
R = TypeVar("R")

THEMES = [
    {"key": "technology", "title": "Use of technology in peacekeeping"},
    {"key": "safety-security", "title": "Safety and security of peacekeepers"},
    {"key": "regional-cooperation", "title": "Cooperation between regional organizations"},
]
THEME_KEYS = [t["key"] for t in THEMES]
TEXT = (
    "Equip every mission with a common situational-awareness platform that integrates "
    "sensor feeds, patrol reports and early-warning indicators, shared with troop- and "
    "police-contributing countries, with training and a budget line for maintenance ({n})."
)
_serial = itertools.count(1)


@dataclass(frozen=True)
class Person:
    token: str
    id: str = ""
    name: str = ""

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def cli_user(env: dict[str, str], cwd: Path, name: str, delegation: str, **roles: bool) -> Person:
    """``prepmeet users create``: the token is the last line of its output."""
    argv = prepmeet_argv("users", "create", "--name", name, "--delegation", delegation)
    argv += [f"--{role}" for role, on in roles.items() if on]
    out = run_command(argv, env, cwd)
    lines = [line.strip() for line in out.splitlines() if line.strip()]
    if not lines:
        raise HarnessError("prepmeet users create printed no token")
    return Person(lines[-1], name=name)


def proposal_body(theme: str, submit: bool = True, n: int | None = None) -> dict[str, Any]:
    n = next(_serial) if n is None else n
    return {
        "theme": theme,
        "title": f"Situational awareness {n}",
        "text": TEXT.format(n=n),
        "submit": submit,
    }


async def gather_limited(
    items: Iterable[T], fn: Callable[[T], Awaitable[R]], concurrency: int
) -> list[R]:
    """``fn`` over ``items``, at most ``concurrency`` at once, results in order."""
    gate = asyncio.Semaphore(concurrency)

    async def one(item: T) -> R:
        async with gate:
            return await fn(item)

    return list(await asyncio.gather(*(one(i) for i in items)))


class Api:
    """The calls the harness makes to set up a world; every non-2xx is a HarnessError."""

    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        self.client = new_client(base_url, timeout, connections=32)

    async def close(self) -> None:
        await self.client.aclose()

    async def call(self, method: str, path: str, who: Person | None = None, **kwargs: Any) -> Any:
        headers = dict(who.auth) if who is not None else {}
        r = await self.client.request(method, path, headers=headers, **kwargs)
        if r.status_code >= 300:
            raise HarnessError(f"{method} {path}: {r.status_code} {r.text[:300]}")
        if r.headers.get("content-type", "").startswith("application/json"):
            return r.json()
        return r.content

    async def me(self, who: Person) -> Person:
        data = await self.call("GET", "/api/v1/me", who)
        return Person(who.token, data["id"], data["name"])

    async def user(self, secretariat: Person, name: str, delegation: str) -> Person:
        body = {"name": name, "delegation": delegation}
        data = await self.call("POST", "/api/v1/users", secretariat, json=body)
        return Person(data["token"], data["id"], name)

    async def users(self, secretariat: Person, prefix: str, count: int) -> list[Person]:
        return await gather_limited(
            range(count),
            lambda i: self.user(secretariat, f"{prefix} {i}", f"{prefix} delegation {i}"),
            8,
        )

    async def meeting(
        self,
        secretariat: Person,
        title: str,
        chairs: Sequence[Person],
        rapporteurs: Sequence[Person],
        open_it: bool = True,
    ) -> str:
        body = {
            "title": title,
            "venue": "CIPS, NUST, Islamabad",
            "starts_on": "2025-04-15",
            "ends_on": "2025-04-16",
            "hosts": ["Pakistan", "Republic of Korea"],
            "ministerial": "berlin-2025",
            "themes": THEMES,
        }
        mid = str((await self.call("POST", "/api/v1/meetings", secretariat, json=body))["id"])
        cast = [(c, "chair") for c in chairs] + [(r, "rapporteur") for r in rapporteurs]
        for person, role in cast:
            enrol = {"user_id": person.id, "role": role, "themes": THEME_KEYS}
            await self.call("POST", f"/api/v1/meetings/{mid}/participants", secretariat, json=enrol)
        if open_it:
            await self.call("POST", f"/api/v1/meetings/{mid}/open", secretariat)
        return mid

    async def propose(
        self, rapporteur: Person, meeting_id: str, submit: bool = True, n: int | None = None
    ) -> dict[str, Any]:
        theme = THEME_KEYS[(n or 0) % len(THEME_KEYS)]
        body = proposal_body(theme, submit, n)
        data: dict[str, Any] = await self.call(
            "POST", f"/api/v1/meetings/{meeting_id}/proposals", rapporteur, json=body
        )
        return data

    async def approve(self, chair: Person, proposal_id: str) -> dict[str, Any]:
        data: dict[str, Any] = await self.call(
            "POST", f"/api/v1/proposals/{proposal_id}/approve", chair, json={"note": "agreed"}
        )
        return data

    async def proposals(
        self,
        rapporteurs: Sequence[Person],
        meeting_id: str,
        count: int,
        concurrency: int = 16,
    ) -> list[str]:
        """``count`` submitted proposals, the rapporteurs taking turns; their ids."""

        async def one(i: int) -> str:
            data = await self.propose(rapporteurs[i % len(rapporteurs)], meeting_id, True, i)
            return str(data["id"])

        return await gather_limited(range(count), one, concurrency)

    async def approve_all(
        self, chair: Person, ids: Sequence[str], concurrency: int = 16
    ) -> list[int]:
        async def one(pid: str) -> int:
            return int((await self.approve(chair, pid))["position"])

        return await gather_limited(ids, one, concurrency)

    async def wait_views(self, position: int, timeout: float = 120.0) -> float:
        """Poll ``/readyz`` until the views reach ``position``; the seconds it took."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        while True:
            r = await self.client.get("/readyz")
            if r.status_code == 200 and int(r.json()["view_position"]) >= position:
                return loop.time() - started
            if loop.time() - started > timeout:
                raise HarnessError(f"the views did not reach {position} in {timeout:.0f} s")
            await asyncio.sleep(0.01)

    async def caught_up(self, timeout: float = 600.0) -> float:
        """Poll ``/readyz`` until the views have no lag; the seconds it took."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        while True:
            r = await self.client.get("/readyz")
            if r.status_code == 200 and int(r.json()["lag"]) == 0:
                return loop.time() - started
            if loop.time() - started > timeout:
                raise HarnessError(f"the views did not catch up in {timeout:.0f} s")
            await asyncio.sleep(0.02)
