"""Backup, restore and migration through the JSON-lines log, and tamper evidence."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.container import Container
from api.demo import load_demo
from api.settings import Settings
from domain.application import SYSTEM
from domain.backup import BackupError, export_log, import_log
from projections.audit import verify
from projections.documents import FORMATS


@pytest.fixture
def source(tmp_path: Path) -> Iterator[Container]:
    """The demo meeting on a SQLite file, forwarded twice (with a change in between)."""
    container = Container(Settings(data_dir=tmp_path / "source"))
    container.start()
    demo = load_demo(container.app)
    meeting_id = demo["meeting_id"]
    container.app.close_meeting(SYSTEM, meeting_id)
    container.forward_meeting(SYSTEM, meeting_id)
    container.app.reopen_meeting(SYSTEM, meeting_id, "a late correction")
    container.forward_meeting(SYSTEM, meeting_id)
    container.await_views()
    try:
        yield container
    finally:
        container.close()


def _forwarded_bytes(container: Container, meeting_id: str) -> dict[tuple[int, str], bytes]:
    out: dict[tuple[int, str], bytes] = {}
    for version in (1, 2):
        text, _ = container.app.get_forwarded_document(SYSTEM, meeting_id, version)
        doc = json.loads(text)
        for key, fmt in FORMATS.items():
            out[(version, key)] = text.encode() if key == "json" else fmt.render(doc)
    return out


def _meeting_id(container: Container) -> str:
    items, _ = container.views.list_meetings("", True, 10, None)
    return str(items[0]["id"])


def _copy(source: Container, tmp_path: Path, database_url: str | None) -> Container:
    backup = tmp_path / "log.jsonl"
    with backup.open("w", encoding="utf-8") as out:
        count, _ = export_log(source.app, out)
    assert count == source.app.last_position()
    target = Container(Settings(data_dir=tmp_path / "target", database_url=database_url))
    assert import_log(target.app, backup) == count
    target.start()
    target.await_views()
    return target


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_restored_log_reproduces_aggregates_views_and_forwarded_documents(
    source: Container, tmp_path: Path, kind: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("postgres_url") if kind == "postgres" else None
    target = _copy(source, tmp_path, url)
    try:
        meeting_id = _meeting_id(source)
        assert target.app.last_position() == source.app.last_position()
        assert target.app.feed(0, 10_000) == source.app.feed(0, 10_000)
        assert (
            target.app.get_meeting(SYSTEM, meeting_id).as_dict()
            == source.app.get_meeting(SYSTEM, meeting_id).as_dict()
        )
        src_items, _ = source.views.list_proposals(meeting_id, limit=200)
        dst_items, _ = target.views.list_proposals(meeting_id, limit=200)
        assert dst_items == src_items
        assert target.views.document(meeting_id) == source.views.document(meeting_id)
        assert _forwarded_bytes(target, meeting_id) == _forwarded_bytes(source, meeting_id)
        report = verify(target.app, target.views)
        assert report.ok, report.problems
        assert report.checkpoints == 2
        print(f"\nmigrated {report.events} events to {kind}; chain head {report.head}")
    finally:
        target.close()


def test_a_restore_refuses_a_store_that_is_not_empty(source: Container, tmp_path: Path) -> None:
    backup = tmp_path / "log.jsonl"
    with backup.open("w", encoding="utf-8") as out:
        export_log(source.app, out)
    with pytest.raises(BackupError, match="not empty"):
        import_log(source.app, backup)


def test_a_backup_changed_after_export_is_refused_and_nothing_is_written(
    source: Container, tmp_path: Path
) -> None:
    backup = tmp_path / "log.jsonl"
    with backup.open("w", encoding="utf-8") as out:
        export_log(source.app, out)
    lines = backup.read_text(encoding="utf-8").splitlines()
    changed = json.loads(lines[10])
    changed["state"] = changed["state"].replace('"actor":', '"actor": ', 1)
    lines[10] = json.dumps(changed)
    backup.write_text("\n".join(lines) + "\n", encoding="utf-8")
    target = Container(Settings(data_dir=tmp_path / "target"))
    try:
        with pytest.raises(BackupError, match=r"line 11 .*hash chain"):
            import_log(target.app, backup)
        assert target.app.last_position() == 0
    finally:
        target.close()


def test_an_event_edited_behind_the_service_s_back_is_named_by_the_audit(
    source: Container, tmp_path: Path
) -> None:
    assert verify(source.app, source.views).ok
    path = tmp_path / "source" / "events.sqlite"
    conn = sqlite3.connect(path)
    row = conn.execute(
        "SELECT rowid, state FROM stored_events "
        "WHERE CAST(state AS TEXT) LIKE '%Casualty evacuation%' ORDER BY rowid LIMIT 1"
    ).fetchone()
    conn.execute(
        "UPDATE stored_events SET state = ? WHERE rowid = ?",
        (row[1].replace(b"Casualty", b"Kasualty"), row[0]),
    )
    conn.commit()
    conn.close()
    report = verify(source.app, source.views)
    assert not report.ok
    assert report.problems[0].startswith(f"event at position {row[0]} (ProposalDrafted")
    assert any("outcome version 1" in p for p in report.problems)


def test_an_event_deleted_behind_the_service_s_back_is_named_by_the_audit(
    source: Container, tmp_path: Path
) -> None:
    conn = sqlite3.connect(tmp_path / "source" / "events.sqlite")
    conn.execute("DELETE FROM stored_events WHERE rowid = 20")
    conn.commit()
    conn.close()
    report = verify(source.app, source.views)
    assert report.problems[0] == "event at position 20 was projected but is missing from the log"
