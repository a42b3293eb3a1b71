"""Projectors as real processes: killed mid catch-up, or two at once, the views stay exact."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from domain.application import PreparatoryMeetings, new
from domain.meeting import Meeting
from domain.proposal import Proposal
from domain.store import store_env
from domain.users import User
from projections.runner import Projector
from projections.views import TABLES, ReadModel, open_read_side

ROOT = Path(__file__).resolve().parents[2]
KEYS = {
    "pm_tracking": "id",
    "pm_users": "id",
    "pm_meetings": "id",
    "pm_participants": "meeting_id, user_id",
    "pm_proposals": "id",
    "pm_recommendations": "meeting_id",
    "pm_fold_proposals": "meeting_id, proposal_id",
    "pm_outcomes": "meeting_id, version",
    "pm_comments": "proposal_id, position",
    "pm_positions": "chunk",
}
RUN = (
    "import logging, sys; from pathlib import Path;"
    "from projections.runner import run_projector_forever;"
    "logging.basicConfig(level=logging.INFO, format='%(process)d %(name)s %(message)s');"
    "sys.exit(run_projector_forever(Path(sys.argv[1]), sys.argv[2] or None, batch_size=100,"
    " poll_interval=0.05))"
)


def populate(app: PreparatoryMeetings, meetings: int, proposals: int) -> int:
    """Many events written fast: whole aggregates saved many at a time; the proposal count."""
    users = [
        new(
            User,
            User.Registered,
            None,
            actor="system",
            name=f"Person {i}",
            delegation=f"Delegation {i}",
            secretariat=False,
            ministerial=False,
            request_hash=None,
        )
        for i in range(20)
    ]
    app.save(*users)
    count = 0
    for m in range(meetings):
        meeting = new(
            Meeting,
            Meeting.Scheduled,
            None,
            actor="system",
            title=f"Meeting {m}",
            venue="Islamabad",
            starts_on=f"2025-04-{m % 28 + 1:02d}",
            ends_on="2025-05-01",
            hosts=["Pakistan"],
            ministerial="berlin-2025",
            themes=[{"key": "technology", "title": "T"}, {"key": "safety", "title": "S"}],
            request_hash=None,
        )
        meeting.open("system")
        for user in users[:6]:
            meeting.enrol("system", str(user.id), "rapporteur", ["technology", "safety"])
        app.save(meeting)
        batch: list[Proposal] = []
        for i in range(proposals):
            proposer = users[i % len(users)]
            p = new(
                Proposal,
                Proposal.Drafted,
                None,
                actor=str(proposer.id),
                meeting_id=str(meeting.id),
                theme=("technology", "safety")[i % 2],
                title=f"Proposal {i}",
                text="x" * 200,
                rationale=None,
                request_hash=None,
            )
            p.revise(str(proposer.id), None, f"Revised {i}", None)
            p.submit(str(proposer.id))
            p.comment(str(users[0].id), "c", "a comment")
            p.endorse(str(users[1].id), "Delegation 1")
            p.approve(str(users[2].id), None, None)
            batch.append(p)
            count += 1
            if len(batch) == 100:
                app.save(*batch)
                batch = []
        if batch:
            app.save(*batch)
    return count


def indexed(rows: dict[str, list[tuple[Any, ...]]]) -> int:
    """How many positions the position index holds."""
    return sum(len(json.loads(row[3])) for row in rows["pm_positions"])


def dump(model: ReadModel) -> dict[str, list[tuple[Any, ...]]]:
    return {t: model.fetch(f"SELECT * FROM {t} ORDER BY {KEYS[t]}") for t in TABLES}


def start_projector(data_dir: Path, url: str | None, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-c", RUN, str(data_dir), url or ""],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=out,
        )


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Path, str | None]]:
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    yield tmp_path / "data", url


def check_exact(data_dir: Path, url: str | None, proposals: int) -> None:
    """The views hold every event once: equal to a rebuild, and counted."""
    app = PreparatoryMeetings(env=store_env(data_dir, url))
    model = open_read_side(data_dir, url)
    try:
        end = app.last_position()
        assert model.position() == end
        projected = dump(model)
        assert indexed(projected) == len(app.recorder.select_notifications(0, end))
        assert len(projected["pm_proposals"]) == proposals
        assert {row[10] for row in projected["pm_proposals"]} == {'["Delegation 1"]'}
        assert {row[15] for row in projected["pm_proposals"]} == {6}
        with Projector(app, model) as projector:
            assert projector.rebuild() == end
        assert dump(model) == projected
    finally:
        model.close()
        app.close()


def test_a_projector_killed_mid_catch_up_resumes_and_applies_every_event_once(
    store: tuple[Path, str | None], tmp_path: Path
) -> None:
    data_dir, url = store
    app = PreparatoryMeetings(env=store_env(data_dir, url))
    proposals = populate(app, meetings=6, proposals=560)
    end = app.last_position()
    app.close()
    assert end > 20_000
    model = open_read_side(data_dir, url)
    log = tmp_path / "projector.log"
    try:
        first = start_projector(data_dir, url, log)
        assert model.wait_for(2_000, timeout=60), log.read_text()
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        killed_at = model.position()
        assert 2_000 <= killed_at < end

        second = start_projector(data_dir, url, log)
        assert model.wait_for(end, timeout=60), log.read_text()
        second.send_signal(signal.SIGTERM)
        assert second.wait(10) == 0, log.read_text()
    finally:
        model.close()
    check_exact(data_dir, url, proposals)


def test_two_projector_processes_started_at_once_keep_the_views_exact(
    store: tuple[Path, str | None], tmp_path: Path
) -> None:
    data_dir, url = store
    app = PreparatoryMeetings(env=store_env(data_dir, url))
    proposals = populate(app, meetings=2, proposals=500)
    end = app.last_position()
    app.close()
    model = open_read_side(data_dir, url)
    log = tmp_path / "projectors.log"
    try:
        both = [start_projector(data_dir, url, log) for _ in range(2)]
        assert model.wait_for(end, timeout=60), log.read_text()
        for process in both:
            process.send_signal(signal.SIGTERM)
        assert [p.wait(10) for p in both] == [0, 0], log.read_text()
    finally:
        model.close()
    check_exact(data_dir, url, proposals)
