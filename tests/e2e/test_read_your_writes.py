"""Read-your-writes over HTTP: a read right after a write sees it, with or without ``after``.

A thousand times over, a rapporteur creates a proposal and at once lists the meeting's
proposals filtered by proposer: the new one is always there (no sleeping, no retries: the
API waits for its views itself). With the projector stopped, the same read answers 503 with
``Retry-After`` within the configured bound, and /readyz reports the lag; started again,
the views catch up and the read succeeds.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from api.main import create_app
from domain.application import SYSTEM, PreparatoryMeetings
from tests.e2e.conftest import assert_problem, client_for, settings_for

REPETITIONS = 1_000
RAPPORTEURS = 25  # each proposer's list (40 proposals) stays within one page
THEME = "technology"


@dataclass
class Setting:
    app: FastAPI
    meeting: str
    rapporteurs: list[tuple[str, dict[str, str]]]
    """(user id, auth header) of each rapporteur."""

    @property
    def core(self) -> PreparatoryMeetings:
        core: PreparatoryMeetings = self.app.state.container.app
        return core


def seed(core: PreparatoryMeetings) -> tuple[str, list[tuple[str, dict[str, str]]]]:
    meeting = core.schedule_meeting(
        SYSTEM,
        "Third UN Peacekeeping Ministerial Preparatory Meeting",
        "CIPS, NUST, Islamabad",
        "2025-04-15",
        "2025-04-16",
        ["Pakistan", "Republic of Korea"],
        "berlin-2025",
        [{"key": THEME, "title": "Use of technology in peacekeeping"}],
    ).state["id"]
    rapporteurs = []
    for n in range(RAPPORTEURS):
        user = core.create_user(SYSTEM, f"Rapporteur {n}", f"Delegation {n}")
        uid = str(user.state["id"])
        core.enrol_participant(SYSTEM, meeting, uid, "rapporteur", [THEME])
        rapporteurs.append((uid, {"Authorization": f"Bearer {user.extra['token']}"}))
    core.open_meeting(SYSTEM, meeting)
    return str(meeting), rapporteurs


def open_setting(directory: Path, **settings: Any) -> Iterator[Setting]:
    limits = {"rate_limit_per_token": 0, "rate_limit_per_address": 0}
    app = create_app(settings_for(directory, **{**limits, **settings}))
    try:
        meeting, rapporteurs = seed(app.state.container.app)
        yield Setting(app, meeting, rapporteurs)
    finally:
        app.state.container.close()


@pytest.fixture
def setting(tmp_path: Path) -> Iterator[Setting]:
    yield from open_setting(tmp_path / "data")


@pytest.fixture
def stallable(tmp_path: Path) -> Iterator[Setting]:
    yield from open_setting(tmp_path / "data", read_wait_timeout=0.5)


def proposal(n: int) -> dict[str, Any]:
    return {"theme": THEME, "title": f"Proposal {n}", "text": f"Wording of proposal {n}."}


@pytest.mark.parametrize("with_after", [False, True], ids=["plain", "after"])
async def test_a_read_right_after_a_write_always_sees_it(
    setting: Setting, with_after: bool
) -> None:
    path = f"/api/v1/meetings/{setting.meeting}/proposals"
    misses: list[tuple[int, str]] = []
    mine: dict[str, list[str]] = {uid: [] for uid, _ in setting.rapporteurs}
    started = time.monotonic()
    async with client_for(setting.app, hooks=[]) as client:
        for n in range(REPETITIONS):
            uid, auth = setting.rapporteurs[n % RAPPORTEURS]
            created = await client.post(path, json=proposal(n), headers=auth)
            assert created.status_code == 201, created.text
            body = created.json()
            mine[uid].append(body["id"])
            params: dict[str, Any] = {"proposer": uid, "limit": 200}
            if with_after:
                params["after"] = body["position"]
            listed = await client.get(path, params=params, headers=auth)
            assert listed.status_code == 200, listed.text
            ids = [item["id"] for item in listed.json()["items"]]
            if ids != mine[uid]:  # the new one, and every earlier one, oldest first
                misses.append((n, body["id"]))
    elapsed = time.monotonic() - started
    assert misses == [], f"{len(misses)} of {REPETITIONS} reads missed their write"
    assert sum(len(ids) for ids in mine.values()) == REPETITIONS
    assert elapsed < 90, f"{REPETITIONS} write-read pairs took {elapsed:.1f} s"


async def test_a_stalled_projector_makes_reads_answer_503_with_retry_after(
    stallable: Setting,
) -> None:
    setting = stallable
    path = f"/api/v1/meetings/{setting.meeting}/proposals"
    _, auth = setting.rapporteurs[0]
    async with client_for(setting.app) as client:
        seeded = setting.core.last_position()
        caught_up = await client.get("/api/v1/meetings", params={"after": seeded}, headers=auth)
        assert caught_up.status_code == 200
        ready = await client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["lag"] == 0

        container = setting.app.state.container
        assert container.projector is not None
        container.projector.stop()
        viewed = setting.core.last_position()
        created = await client.post(path, json=proposal(1), headers=auth)
        assert created.status_code == 201, created.text  # commands do not wait for the views
        position = created.json()["position"]

        for params in ({"after": position}, {}):
            started = time.monotonic()
            stalled = await client.get(path, params=params, headers=auth)
            elapsed = time.monotonic() - started
            body = assert_problem(stalled, 503)
            assert stalled.headers["retry-after"].isdigit(), stalled.headers
            assert str(position) in body["detail"]
            assert 0.4 <= elapsed < 5, elapsed  # waited for the configured bound, no longer
        # other reads of the views wait the same way
        assert_problem(await client.get("/api/v1/meetings", headers=auth), 503)
        assert_problem(
            await client.get(f"/api/v1/meetings/{setting.meeting}/recommendations", headers=auth),
            503,
        )

        ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text
        report = ready.json()
        assert report["store_position"] == position == setting.core.last_position()
        assert report["view_position"] == viewed < position
        assert report["lag"] == position - viewed
        metrics = (await client.get("/metrics")).text
        assert f"prepmeet_projection_lag_events {position - viewed}" in metrics

        # started again, the views catch up and the same reads succeed
        container.projector.start()
        caught_up = await client.get(path, params={"after": position}, headers=auth)
        assert caught_up.status_code == 200, caught_up.text
        assert [p["id"] for p in caught_up.json()["items"]] == [created.json()["id"]]
        assert (await client.get("/readyz")).json()["lag"] == 0
