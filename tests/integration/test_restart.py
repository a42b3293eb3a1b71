"""The SQLite file is the record: what one process wrote, the next one reads.

And the start-up checks of the store: an existing SQLite file refused unless in WAL mode,
``synchronous=FULL``, a reachable PostgreSQL server that flushes every commit.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import OperationalError

from api.container import open_application
from api.settings import Settings
from domain import store as store_module
from domain.application import SYSTEM, PreparatoryMeetings
from domain.errors import Unauthenticated
from domain.proposal import APPROVED, MERGED, REJECTED, SUBMITTED, WITHDRAWN
from domain.store import EVENTS_FILE, StoreUnavailable, check_sqlite_durability, store_env
from tests.given import OTHER_DELEGATION, TECH, Given

PREPMEET = Path(sys.executable).parent / "prepmeet"


def everything(app: PreparatoryMeetings, g: Given, pids: list[str]) -> dict[str, Any]:
    """All that the record says about the meeting, its people and its proposals."""
    meeting = app.get_meeting(SYSTEM, g.meeting)
    return {
        "meeting": meeting.as_dict(),
        "participants": meeting.participants,
        "orders": meeting.orders,
        "users": [app.get_user(u).as_dict() for u in (g.secretariat, g.chair, g.proposer)],
        "proposals": [app.proposal_state(app.get_proposal(SYSTEM, p)[0]) for p in pids],
        "comments": [g.get(p).comments for p in pids],
        "log": [e.proposal_id for e in app.proposal_ids(g.meeting)],
        "history": [app.history(g.chair, p) for p in pids],
        "feed": app.feed(0, 10_000),
        "position": app.last_position(),
        "outcome": app.get_forwarded_document(SYSTEM, g.meeting, 1),
    }


def test_a_new_application_on_the_same_file_finds_everything_the_first_one_wrote(
    tmp_path: Path,
) -> None:
    first = PreparatoryMeetings(env=store_env(tmp_path, None))
    g = Given(first).open()
    token = first.issue_token(g.secretariat, g.proposer).extra["token"]
    revoked = first.create_user(g.secretariat, "Left early", "Chile")
    first.revoke_tokens(g.secretariat, revoked.state["id"])
    pids = [g.proposal(state) for state in (SUBMITTED, APPROVED, REJECTED, MERGED, WITHDRAWN)]
    first.endorse_proposal(g.other_rapporteur, pids[0], OTHER_DELEGATION)
    first.comment_on_proposal(g.chair, pids[0], "Which missions first?")
    first.revise_proposal(g.proposer, g.proposal(), text="A revised text.")
    first.order_theme(g.chair, g.meeting, TECH, [pids[1]])
    g.close().forward()
    written = everything(first, g, pids)
    first.close()

    second = PreparatoryMeetings(env=store_env(tmp_path, None))
    try:
        g.app = second
        assert everything(second, g, pids) == written
        assert str(second.authenticate(token).id) == g.proposer
        with pytest.raises(Unauthenticated):
            second.authenticate(revoked.extra["token"])
        # and the second application goes on where the first stopped
        g.reopen()
        second.reconsider_proposal(g.chair, pids[1], reason="A late correction")
        assert g.get(pids[1]).status == SUBMITTED
        assert second.last_position() == written["position"] + 2
    finally:
        second.close()


def journal_mode(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return str(conn.execute("PRAGMA journal_mode").fetchone()[0])
    finally:
        conn.close()


def rollback_journal_file(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.execute("CREATE TABLE kept (x)")
    conn.close()
    assert journal_mode(path) == "delete"


def test_an_existing_file_in_rollback_journal_mode_is_refused_not_converted(
    tmp_path: Path,
) -> None:
    path = tmp_path / EVENTS_FILE
    rollback_journal_file(path)

    with pytest.raises(StoreUnavailable) as refused:
        store_env(tmp_path, None)

    message = str(refused.value)
    assert "\n" not in message
    assert f"{path} is in journal mode delete, not WAL" in message
    assert f"sqlite3 {path} 'PRAGMA journal_mode=WAL'" in message
    assert journal_mode(path) == "delete"
    # the conversion the message names is all it takes
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.close()
    app = PreparatoryMeetings(env=store_env(tmp_path, None))
    try:
        created = app.create_user(SYSTEM, "Secretariat", "UN DPO", secretariat=True)
        assert app.get_user(created.state["id"]).name == "Secretariat"
    finally:
        app.close()
    assert journal_mode(path) == "wal"


def test_an_empty_file_is_created_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / EVENTS_FILE
    path.touch()
    store_env(tmp_path, None)
    assert journal_mode(path) == "wal"


def test_serve_on_a_refused_store_exits_non_zero_with_one_line_on_stderr(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    rollback_journal_file(data_dir / EVENTS_FILE)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREPMEET_")}
    env["PREPMEET_DATA_DIR"] = str(data_dir)
    done = subprocess.run(
        [str(PREPMEET), "serve", "--port", "0"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("prepmeet: SQLite store ")
    assert "journal mode delete, not WAL" in lines[0]
    assert done.stdout == ""


class Connection:
    """A sqlite3 connection whose answers to some PRAGMAs are replaced."""

    def __init__(self, real: sqlite3.Connection, answers: dict[str, object]) -> None:
        self.real, self.answers = real, answers

    def execute(self, sql: str, *args: Any) -> Any:
        for pragma, answer in self.answers.items():
            if sql.replace(" ", "").upper().startswith(f"PRAGMA{pragma}".upper()):
                self.real.execute(sql, *args)
                return _Cursor(answer)
        return self.real.execute(sql, *args)

    def close(self) -> None:
        self.real.close()


class _Cursor:
    def __init__(self, value: object) -> None:
        self.value = value

    def fetchone(self) -> tuple[object]:
        return (self.value,)


def with_pragmas(monkeypatch: pytest.MonkeyPatch, answers: dict[str, object]) -> None:
    real_connect = sqlite3.connect
    monkeypatch.setattr(
        store_module.sqlite3,
        "connect",
        lambda *a, **kw: Connection(real_connect(*a, **kw), answers),
    )


def test_a_new_file_that_cannot_be_put_in_wal_mode_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_pragmas(monkeypatch, {"journal_mode=WAL": "delete"})
    with pytest.raises(
        StoreUnavailable, match=r"could not be created in WAL mode \(journal mode delete\)"
    ):
        store_env(tmp_path, None)


@pytest.mark.parametrize("synchronous", [0, 1, 3])
def test_a_store_that_does_not_commit_with_synchronous_full_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, synchronous: int
) -> None:
    with_pragmas(monkeypatch, {"synchronous": synchronous})
    with pytest.raises(StoreUnavailable, match="not FULL"):
        check_sqlite_durability(tmp_path / EVENTS_FILE)
    with pytest.raises(StoreUnavailable):
        store_env(tmp_path, None)


def test_a_store_with_synchronous_full_and_wal_passes_the_check(tmp_path: Path) -> None:
    check_sqlite_durability(tmp_path / EVENTS_FILE)
    assert journal_mode(tmp_path / EVENTS_FILE) == "wal"


def test_a_path_that_cannot_hold_a_sqlite_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / EVENTS_FILE).mkdir()  # a directory where the file should be
    with pytest.raises(StoreUnavailable, match="cannot open SQLite store"):
        store_env(tmp_path, None)


@pytest.mark.parametrize(
    "url",
    ["mysql://127.0.0.1/prepmeet", "postgresql://127.0.0.1:5432/", "postgresql://127.0.0.1"],
)
def test_a_database_url_that_is_not_a_postgresql_database_is_refused(
    tmp_path: Path, url: str
) -> None:
    with pytest.raises(StoreUnavailable):
        store_env(tmp_path, url)


def test_an_unreachable_postgresql_server_fails_the_construction_of_the_application(
    tmp_path: Path,
) -> None:
    """Constructing the application raises the library's ``OperationalError``.

    It is ``eventsourcing.persistence.OperationalError`` ("couldn't get a connection after
    N sec"), raised from the connection pool when the tables are created; it is not
    ``StoreUnavailable``, which only ``store_env`` raises, so the composition root has to
    translate it for the operator. The connect timeout is lowered here from store_env's 5
    seconds to 1 to keep the test short; the error is the same.
    """
    env = store_env(tmp_path, "postgresql://postgres@127.0.0.1:1/prepmeet")
    env["POSTGRES_CONNECT_TIMEOUT"] = "1"
    with pytest.raises(OperationalError):
        PreparatoryMeetings(env=env)


def test_postgresql_start_up_logs_the_durability_settings_it_relies_on(
    tmp_path: Path, postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="prepmeet"):
        app = open_application(Settings(data_dir=tmp_path, database_url=postgres_url))
    app.close()
    logged = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert "PostgreSQL store relies on fsync=on, synchronous_commit=on, full_page_writes=on" in (
        logged
    ), logged


@pytest.mark.parametrize(
    ("setting", "advice"),
    [("fsync", "set fsync = on"), ("synchronous_commit", "set synchronous_commit = on")],
)
def test_postgresql_that_acknowledges_unflushed_commits_is_refused(
    tmp_path: Path,
    postgres_url: str,
    monkeypatch: pytest.MonkeyPatch,
    setting: str,
    advice: str,
) -> None:
    real = store_module.show_postgres_settings
    asked: list[Any] = []

    def answers(datastore: Any) -> dict[str, str]:
        asked.append(datastore)
        return {**real(datastore), setting: "off"}

    monkeypatch.setattr(store_module, "show_postgres_settings", answers)
    with pytest.raises(StoreUnavailable) as refused:
        open_application(Settings(data_dir=tmp_path, database_url=postgres_url))
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith(f"PostgreSQL runs with {setting}=off: ")
    assert advice in message
    assert len(asked) == 1
    assert asked[0].pool.closed, "the refused application's connections are closed"


@pytest.mark.parametrize("answer", ["local", "remote_write", "remote_apply"])
def test_postgresql_synchronous_commit_that_flushes_locally_passes(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch, answer: str
) -> None:
    real = store_module.show_postgres_settings
    monkeypatch.setattr(
        store_module,
        "show_postgres_settings",
        lambda datastore: {**real(datastore), "synchronous_commit": answer},
    )
    app = open_application(Settings(data_dir=tmp_path, database_url=postgres_url))
    try:
        created = app.create_user(SYSTEM, "Amina Qureshi", "UN DPO")
        assert app.get_user(created.state["id"]).name == "Amina Qureshi", "the store is usable"
    finally:
        app.close()


def test_the_same_ids_survive_a_restart_as_the_same_kind_of_object(tmp_path: Path) -> None:
    first = PreparatoryMeetings(env=store_env(tmp_path, None))
    g = Given(first).open()
    pid = g.proposal(SUBMITTED)
    first.close()
    second = PreparatoryMeetings(env=store_env(tmp_path, None))
    try:
        proposal, meeting = second.get_proposal(g.observer, pid)
        assert (proposal.id, str(meeting.id)) == (UUID(pid), g.meeting)
        assert proposal.version == 2
    finally:
        second.close()


def test_closing_the_service_closes_the_views_and_the_store_when_a_step_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from api.container import Container

    container = Container(Settings(data_dir=tmp_path / "data"))
    assert container.projector is not None
    closed: list[str] = []
    close_views, close_app = container.views.close, container.app.close

    def failing_stop(timeout: float = 10.0) -> None:
        raise RuntimeError("the projector could not be stopped")

    def views_closed() -> None:
        closed.append("views")
        close_views()

    def app_closed() -> None:
        closed.append("store")
        close_app()

    monkeypatch.setattr(container.projector, "stop", failing_stop)
    monkeypatch.setattr(container.views, "close", views_closed)
    monkeypatch.setattr(container.app, "close", app_closed)
    with pytest.raises(RuntimeError, match="could not be stopped"):
        container.close()
    assert closed == ["views", "store"]
