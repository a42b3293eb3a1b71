"""Store-level work the harness runs in a process of its own, each printing one JSON line.

``python -m bench.store_ops seed DIR --events N``
    fill a SQLite store with about N events of history (users, meetings, proposals in
    several states), saving many aggregates per ``save()`` call; no HTTP involved
``python -m bench.store_ops rebuild DIR``
    rebuild the views with the Projector API (as ``prepmeet projections rebuild`` does)
``python -m bench.store_ops read DIR [--rebuild]``
    the raw ``select_notifications`` read rate of the store, in the rebuild's page size
    (then, with ``--rebuild``, the rebuild in the same process: ``{"read", "rebuild"}``)
``python -m bench.store_ops save (DIR | --url URL) --threads T --seconds S``
    the store ceiling: raw eventsourcing ``save()`` of one new aggregate (three events, as
    a create-and-submit records) per call, from T threads, on that kind of store
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

TEXT = (
    "Equip every mission with a common situational-awareness platform that integrates "
    "sensor feeds, patrol reports and early-warning indicators, shared with troop- and "
    "police-contributing countries, with training and a budget line for maintenance {n}."
)
THEMES = [
    {"key": "technology", "title": "Use of technology in peacekeeping"},
    {"key": "safety-security", "title": "Safety and security of peacekeepers"},
    {"key": "regional-cooperation", "title": "Cooperation between regional organizations"},
]


def _store_env(data_dir: Path | None, url: str | None) -> dict[str, str]:
    from domain.store import store_env

    return store_env(data_dir or Path("."), url)


# --- history -------------------------------------------------------------------------------


def seed(data_dir: Path, events: int, per_meeting: int = 250, batch: int = 100) -> dict[str, Any]:
    """About ``events`` events of realistic history, saved ``batch`` aggregates per call."""
    from domain.application import SYSTEM, PreparatoryMeetings, new
    from domain.meeting import Meeting
    from domain.proposal import Proposal

    started = time.perf_counter()
    app = PreparatoryMeetings(env=_store_env(data_dir, None))
    try:
        people = [
            app.create_user(SYSTEM, f"Delegate {i}", f"Delegation {i % 40}").state["id"]
            for i in range(48)
        ]
        chairs, rapporteurs = people[:8], people[8:]
        themes = [t["key"] for t in THEMES]
        n = 0
        saves = 0
        pending: list[Any] = []

        def flush() -> None:
            nonlocal pending, saves
            if pending:
                app.save(*pending)
                saves += 1
                pending = []

        while app.last_position() < events:
            meeting = new(
                Meeting,
                Meeting.Scheduled,
                None,
                actor=SYSTEM,
                title=f"Preparatory meeting {n}",
                venue="CIPS, NUST, Islamabad",
                starts_on="2025-04-15",
                ends_on="2025-04-16",
                hosts=["Pakistan", "Republic of Korea"],
                ministerial="berlin-2025",
                themes=THEMES,
                request_hash=None,
            )
            chair = chairs[n % len(chairs)]
            meeting.enrol(SYSTEM, chair, "chair", themes)
            cast = [rapporteurs[(n + k) % len(rapporteurs)] for k in range(10)]
            for who in cast:
                meeting.enrol(SYSTEM, who, "rapporteur", themes)
            meeting.open(SYSTEM)
            pending.append(meeting)
            log = getattr(app, "_proposal_log", None)
            plog = log(meeting.id) if log is not None else None
            for k in range(per_meeting):
                who = cast[k % len(cast)]
                theme = themes[k % len(themes)]
                p = new(
                    Proposal,
                    Proposal.Drafted,
                    None,
                    actor=who,
                    meeting_id=str(meeting.id),
                    theme=theme,
                    title=f"Recommendation {n}.{k}",
                    text=TEXT.format(n=k),
                    rationale=None,
                    request_hash=None,
                )
                if k % 10:
                    p.submit(who)
                if k % 10 in (1, 2, 3, 4, 5, 6):
                    p.approve(chair, None, "agreed")
                elif k % 10 == 7:
                    p.reject(chair, "out of scope")
                if k % 5 == 0:
                    p.comment(chair, str(uuid.uuid4()), "Which missions first?")
                if k % 4 == 0:
                    p.endorse(cast[(k + 1) % len(cast)], f"Endorser {k % 7}")
                pending.append(p)
                if plog is not None:
                    pending.append(
                        plog.trigger_event(
                            next_originator_version=Aggregate.INITIAL_VERSION + k,
                            proposal_id=str(p.id),
                            theme=theme,
                            actor=who,
                        )
                    )
                if len(pending) >= batch:
                    flush()
                if k % 20 == 19 and app.last_position() >= events:
                    break
            flush()
            n += 1
        return {
            "events": app.last_position(),
            "meetings": n,
            "saves": saves,
            "seconds": round(time.perf_counter() - started, 3),
        }
    finally:
        app.close()


# --- the read side ---------------------------------------------------------------------------


def rebuild(data_dir: Path) -> dict[str, Any]:
    """Rebuild the views with the Projector API; events and seconds."""
    from domain.application import PreparatoryMeetings
    from projections.runner import Projector
    from projections.views import open_read_side

    app = PreparatoryMeetings(env=_store_env(data_dir, None))
    views = open_read_side(data_dir, None)
    try:
        total = app.last_position()
        started = time.perf_counter()
        position = Projector(app, views).rebuild(progress=False, wait=False)
        seconds = time.perf_counter() - started
    finally:
        views.close()
        app.close()
    return {
        "events": total,
        "position": position,
        "seconds": round(seconds, 4),
        "events_per_s": round(total / seconds, 1),
    }


def read_rate(data_dir: Path, page: int | None = None) -> dict[str, Any]:
    """Read every notification with ``select_notifications`` in pages; events per second."""
    from domain.application import PreparatoryMeetings

    if page is None:
        try:
            from projections.runner import REBUILD_BATCH_SIZE as page
        except ImportError:
            page = 5000
    app = PreparatoryMeetings(env=_store_env(data_dir, None))
    try:
        recorder = app.recorder
        started = time.perf_counter()
        start, count = 1, 0
        while True:
            notes = recorder.select_notifications(start, page)
            if not notes:
                break
            count += len(notes)
            start = notes[-1].id + 1
        seconds = time.perf_counter() - started
    finally:
        app.close()
    return {
        "events": count,
        "page": page,
        "seconds": round(seconds, 4),
        "events_per_s": round(count / seconds, 1),
    }


# --- the store ceiling -------------------------------------------------------------------------


class Note(Aggregate):
    """A stand-in for a proposal: created, then one more event, with a text of its size."""

    @event("Drafted")
    def __init__(self, meeting_id: str, theme: str, title: str, text: str) -> None:
        self.meeting_id = meeting_id
        self.theme = theme
        self.title = title
        self.text = text
        self.submitted = False

    @event("Submitted")
    def submit(self, actor: str) -> None:
        self.submitted = True

    @event("Logged")
    def log(self, theme: str) -> None:
        pass


class StoreCeiling(Application[uuid.UUID]):
    """An application of its own (its own tables) on the same kind of store."""

    name = "benchceiling"
    env = {"COMPRESSOR_TOPIC": ""}


def save_rate(
    data_dir: Path | None, url: str | None, threads: int, seconds: float
) -> dict[str, Any]:
    """Raw ``save()`` calls per second of one new aggregate with three events."""
    app = StoreCeiling(env=_store_env(data_dir, url))
    counts = [0] * threads
    errors = [0] * threads
    go = threading.Event()
    stop = threading.Event()

    def work(i: int) -> None:
        go.wait()
        while not stop.is_set():
            note = Note("m", "technology", "Situational awareness", TEXT.format(n=i))
            note.submit("actor")
            note.log("technology")
            try:
                app.save(note)
                counts[i] += 1
            except Exception:
                errors[i] += 1

    pool = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(threads)]
    for t in pool:
        t.start()
    try:
        app.save(Note("warm", "technology", "warm", "up"))
        started = time.perf_counter()
        go.set()
        time.sleep(seconds)
        stop.set()
        for t in pool:
            t.join(30)
        elapsed = time.perf_counter() - started
    finally:
        stop.set()
        app.close()
    return {
        "threads": threads,
        "saves": sum(counts),
        "errors": sum(errors),
        "seconds": round(elapsed, 4),
        "saves_per_s": round(sum(counts) / elapsed, 1),
        "events_per_s": round(3 * sum(counts) / elapsed, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.store_ops")
    sub = parser.add_subparsers(dest="op", required=True)
    s = sub.add_parser("seed")
    s.add_argument("dir", type=Path)
    s.add_argument("--events", type=int, required=True)
    r = sub.add_parser("rebuild")
    r.add_argument("dir", type=Path)
    rd = sub.add_parser("read")
    rd.add_argument("dir", type=Path)
    rd.add_argument("--page", type=int)
    rd.add_argument("--rebuild", action="store_true")
    sv = sub.add_parser("save")
    sv.add_argument("dir", type=Path, nargs="?")
    sv.add_argument("--url")
    sv.add_argument("--threads", type=int, default=16)
    sv.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args(argv)
    if args.op == "seed":
        out = seed(args.dir, args.events)
    elif args.op == "rebuild":
        out = rebuild(args.dir)
    elif args.op == "read":
        out = read_rate(args.dir, args.page)
        if args.rebuild:
            out = {"read": out, "rebuild": rebuild(args.dir)}
    else:
        if args.dir is None and not args.url:
            parser.error("save needs DIR or --url")
        out = save_rate(args.dir, args.url, args.threads, args.seconds)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
