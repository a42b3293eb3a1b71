"""Moving the demo meeting from SQLite to PostgreSQL with the real command-line tools.

``prepmeet demo`` loads the meeting into a SQLite file, the service forwards its outcome
twice (with a reopening in between), ``prepmeet events export`` writes the log and
``prepmeet events import`` restores it into an empty PostgreSQL store. Then both stores
hold the same notifications, ``prepmeet audit verify`` passes on both, the views read the
same after ``prepmeet projections rebuild`` and every forwarded version has the same bytes
in every format. An import into a store that is not empty, and an event edited behind
the service's back, are refused with one line on standard error.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from api.container import open_application
from api.main import create_app
from api.settings import Settings
from domain.application import event_type
from domain.audit import notifications
from domain.store import EVENTS_FILE
from projections.documents import FORMATS

PREPMEET = Path(sys.executable).parent / "prepmeet"
AUDIT_OK = re.compile(
    r"^(\d+) events hash to chain head (\w+); (\d+) digests and (\d+) forwarded checkpoints match$"
)


@dataclass
class Store:
    """One store as the command line sees it: its data directory and database URL."""

    data_dir: Path
    database_url: str | None
    cwd: Path

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREPMEET_")}
        env["PREPMEET_DATA_DIR"] = str(self.data_dir)
        if self.database_url:
            env["PREPMEET_DATABASE_URL"] = self.database_url
        return env

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(PREPMEET), *args],
            env=self.env,
            cwd=self.cwd,
            capture_output=True,
            text=True,
            timeout=300,
        )

    def ok(self, *args: str) -> str:
        done = self.run(*args)
        assert done.returncode == 0, f"prepmeet {' '.join(args)} failed: {done.stderr[-2000:]}"
        return done.stdout

    def settings(self) -> Settings:
        return Settings(
            data_dir=self.data_dir,
            database_url=self.database_url,
            rate_limit_per_token=0,
            rate_limit_per_address=0,
        )


def one_line_failure(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode != 0, done.stdout
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("prepmeet: ")
    return lines[0]


def audit(store: Store) -> tuple[int, str, int]:
    """``prepmeet audit verify``: (events, chain head, forwarded checkpoints)."""
    match = AUDIT_OK.match(store.ok("audit", "verify").strip())
    assert match, "unexpected audit report"
    return int(match[1]), match[2], int(match[4])


@dataclass
class Demo:
    source: Store
    meeting_id: str
    token: str
    backup: Path
    exported: int
    head: str
    versions: int


def forward_if_none(store: Store, meeting_id: str, token: str) -> int:
    """Forward the demo's outcome twice if it holds none yet; the versions it then holds."""
    auth = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(store.settings())) as client:
        base = f"/api/v1/meetings/{meeting_id}"
        versions = client.get(f"{base}/outcome/versions", headers=auth)
        assert versions.status_code == 200, versions.text
        if versions.json()["items"]:
            return len(versions.json()["items"])
        assert client.post(f"{base}/close", headers=auth).status_code == 200
        assert client.post(f"{base}/forward", headers=auth).status_code == 201
        reopened = client.post(f"{base}/reopen", headers=auth, json={"reason": "a late change"})
        assert reopened.status_code == 200, reopened.text
        assert client.post(f"{base}/forward", headers=auth).status_code == 201
        # the views have recorded every event's digest for the audit
        assert client.get("/api/v1/meetings", headers=auth).status_code == 200
    return 2


def found(pattern: str, text: str) -> str:
    match = re.search(pattern, text, re.M)
    assert match, f"{pattern!r} not in the output of prepmeet demo"
    return match[1]


@pytest.fixture
def demo(tmp_path: Path) -> Demo:
    """The demo meeting on SQLite, with forwarded outcomes, exported to a JSON-lines file."""
    source = Store(tmp_path / "sqlite", None, tmp_path)
    out = source.ok("demo")
    meeting_id = found(r"^demo meeting: (\S+)$", out)
    token = found(r"^secretariat\s.*\n.*\n\s+token (\S+)$", out)
    versions = forward_if_none(source, meeting_id, token)
    backup = tmp_path / "log.jsonl"
    exported = source.ok("events", "export", str(backup)).strip()
    match = re.fullmatch(
        rf"exported (\d+) events to {re.escape(str(backup))}; chain head (\w+)", exported
    )
    assert match, exported
    return Demo(source, meeting_id, token, backup, int(match[1]), match[2], versions)


@pytest.fixture
def migrated(demo: Demo, tmp_path: Path, postgres_url: str) -> Iterator[Store]:
    """The demo's backup imported into an empty PostgreSQL store."""
    target = Store(tmp_path / "postgres", postgres_url, tmp_path)
    imported = target.ok("events", "import", str(demo.backup)).strip()
    assert imported == f"imported {demo.exported} events from {demo.backup}; views rebuilt"
    yield target


def stored(store: Store) -> list[tuple[Any, ...]]:
    """Every notification: position, aggregate, version, topic, type and stored data."""
    app = open_application(store.settings(), create_tables=False)
    try:
        return [
            (
                n.id,
                str(n.originator_id),
                n.originator_version,
                n.topic,
                event_type(app.mapper.to_domain_event(n)),
                bytes(n.state),
            )
            for n in notifications(app.recorder)
        ]
    finally:
        app.close()


def pages(client: TestClient, path: str, auth: dict[str, str]) -> list[Any]:
    items: list[Any] = []
    cursor: str | None = None
    while True:
        params = {"limit": "200", **({"cursor": cursor} if cursor else {})}
        page = client.get(path, headers=auth, params=params)
        assert page.status_code == 200, (path, page.text)
        items += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return items


def reads(store: Store, meeting_id: str, token: str) -> dict[str, Any]:
    """What the service answers for the meeting: views, lists, documents, forwarded bytes."""
    auth = {"Authorization": f"Bearer {token}"}
    base = f"/api/v1/meetings/{meeting_id}"
    out: dict[str, Any] = {}
    with TestClient(create_app(store.settings())) as client:
        out["meetings"] = pages(client, "/api/v1/meetings", auth)
        out["meeting"] = client.get(base, headers=auth).json()
        proposals = pages(client, f"{base}/proposals", auth)
        out["proposals"] = proposals
        for p in proposals:
            path = f"/api/v1/proposals/{p['id']}"
            out[path] = client.get(path, headers=auth).json()
            out[f"{path}/history"] = pages(client, f"{path}/history", auth)
            out[f"{path}/comments"] = pages(client, f"{path}/comments", auth)
        out["feed"] = pages(client, "/api/v1/events", auth)
        versions = pages(client, f"{base}/outcome/versions", auth)
        out["versions"] = versions
        for key in FORMATS:
            live = client.get(f"{base}/recommendations", headers=auth, params={"format": key})
            assert live.status_code == 200, live.text
            out[f"live.{key}"] = live.content
            for v in versions:
                path = f"{base}/outcome/versions/{v['version']}"
                forwarded = client.get(path, headers=auth, params={"format": key})
                assert forwarded.status_code == 200, forwarded.text
                out[f"v{v['version']}.{key}"] = forwarded.content
        changes = client.get(
            f"{base}/outcome/changes", headers=auth, params={"from": "v1", "to": "live"}
        )
        assert changes.status_code == 200, changes.text
        out["changes"] = changes.json()
        out["public key"] = client.get("/api/v1/signing-key").json()["pem"]
    return out


def test_the_demo_moves_from_sqlite_to_postgresql_with_the_command_line(
    demo: Demo, migrated: Store, tmp_path: Path
) -> None:
    source, target = demo.source, migrated

    before, after = stored(source), stored(target)
    assert after == before
    assert len(after) == demo.exported

    assert audit(source) == audit(target) == (demo.exported, demo.head, demo.versions)

    assert (
        source.ok("projections", "rebuild").strip() == f"views rebuilt to position {before[-1][0]}"
    )
    assert (
        target.ok("projections", "rebuild").strip() == f"views rebuilt to position {after[-1][0]}"
    )
    was, now = (
        reads(source, demo.meeting_id, demo.token),
        reads(target, demo.meeting_id, demo.token),
    )
    source_key = was.pop("public key")
    now.pop("public key")  # the target made a signing key of its own: see below
    assert now.keys() == was.keys()
    for key in was:
        assert now[key] == was[key], key
    versions = [v["version"] for v in now["versions"]]
    assert versions == list(range(1, demo.versions + 1))

    # what was forwarded still verifies, offline, against the key that signed it
    (tmp_path / "signing-key.pem").write_text(source_key, encoding="utf-8")
    for version in versions:
        forwarded = tmp_path / f"v{version}.json"
        forwarded.write_bytes(now[f"v{version}.json"])
        target.ok("verify", str(forwarded), "--key", str(tmp_path / "signing-key.pem"))

    by_type = Counter(row[4] for row in after)
    print(
        f"\nmoved {len(after)} events ({len({row[1] for row in after})} aggregates, "
        f"{len(versions)} forwarded versions x {len(FORMATS)} formats byte-identical) "
        f"from SQLite to PostgreSQL; chain head {demo.head}"
    )
    print("  by type: " + ", ".join(f"{t} {n}" for t, n in sorted(by_type.items())))


def test_an_import_into_a_store_that_is_not_empty_is_refused(demo: Demo, migrated: Store) -> None:
    for store in (migrated, demo.source):
        before = stored(store)
        line = one_line_failure(store.run("events", "import", str(demo.backup)))
        assert line == "prepmeet: the target store is not empty: restore only into an empty store"
        assert stored(store) == before
    print(f"\nimport refused into 2 non-empty stores of {demo.exported} events each")


def test_audit_verify_names_an_event_edited_in_the_sqlite_file(demo: Demo) -> None:
    source = demo.source
    assert audit(source)[0] == demo.exported
    conn = sqlite3.connect(source.data_dir / EVENTS_FILE)
    try:
        position, state, originator, version = conn.execute(
            "SELECT rowid, state, originator_id, originator_version FROM stored_events "
            "WHERE CAST(state AS TEXT) LIKE '%Casualty evacuation%' ORDER BY rowid LIMIT 1"
        ).fetchone()
        conn.execute(
            "UPDATE stored_events SET state = ? WHERE rowid = ?",
            (state.replace(b"Casualty", b"Kasualty"), position),
        )
        conn.commit()
    finally:
        conn.close()

    line = one_line_failure(source.run("audit", "verify"))

    assert line.startswith(
        f"prepmeet: audit failed: event at position {position} (ProposalDrafted, aggregate "
        f"{UUID(originator)} version {version}) no longer matches"
    ), line
    assert "outcome version 1 of meeting" in line
    print(f"\naudit named the event edited at position {position} of {demo.exported}")
