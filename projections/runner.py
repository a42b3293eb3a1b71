"""The projector: catches the views up with the event log, batch by batch, exactly once."""

from __future__ import annotations

import functools
import gc
import logging
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager, suppress
from pathlib import Path
from types import FrameType
from typing import Any, Generic, TypeVar

from eventsourcing.persistence import IntegrityError, InternalError, ProgrammingError

from domain.application import PreparatoryMeetings
from domain.store import store_env
from projections.decoding import NoteRow, read_notes
from projections.projection import ViewProjection, no_pending_commit
from projections.views import SCHEMA_VERSION, ReadModel, TrackingMoved, open_read_side

log = logging.getLogger("prepmeet.projector")

BATCH_SIZE = 500
REBUILD_BATCH_SIZE = 5000
COMMITS_AHEAD = 3
"""Commits of a rebuild that may wait their turn while the next batch is applied."""


COLLECT_EVERY = 50_000
"""Net allocations between two collections of the youngest generation while the views are
rebuilt (Python's default is 700)."""

REBUILD_SWITCH_INTERVAL = 0.001
"""Seconds a thread may keep the interpreter lock while another waits, during a rebuild, at
most (Python's default is 0.005; the server's is ``PREPMEET_SWITCH_INTERVAL_MS``)."""

T = TypeVar("T")


class _SharedChange(Generic[T]):
    """A process-wide setting, changed while anyone needs it changed: the first to need it
    changes it, the last to be done restores it."""

    def __init__(self, read: Callable[[], T], write: Callable[[T], None]) -> None:
        self._read, self._write = read, write
        self._users = 0
        self._saved: T | None = None
        self._lock = threading.Lock()

    @contextmanager
    def changed(self, to: Callable[[T], T]) -> Iterator[None]:
        with self._lock:
            if self._users == 0:
                self._saved = self._read()
                self._write(to(self._saved))
            self._users += 1
        try:
            yield
        finally:
            with self._lock:
                self._users -= 1
                if self._users == 0 and self._saved is not None:
                    self._write(self._saved)


_collector: _SharedChange[tuple[int, ...]] = _SharedChange(
    gc.get_threshold, lambda thresholds: gc.set_threshold(*thresholds)
)
_switching: _SharedChange[float] = _SharedChange(sys.getswitchinterval, sys.setswitchinterval)


def collector_paced(every: int = COLLECT_EVERY) -> AbstractContextManager[None]:
    """Run the cyclic garbage collector less often meanwhile, then as before.

    A rebuild allocates millions of short-lived objects (rows, events, their states) beside
    a working set of tens of thousands, and each collection walks what has survived so far:
    at Python's default pace the collections took a tenth of a rebuild. Collections still
    run, so garbage in cycles is still freed. Nested and concurrent uses share one change.
    """
    return _collector.changed(lambda thresholds: (max(every, thresholds[0]), *thresholds[1:]))


def switching_often(seconds: float = REBUILD_SWITCH_INTERVAL) -> AbstractContextManager[None]:
    """Let a thread keep the interpreter lock at most ``seconds`` while another waits,
    meanwhile; then as before.

    The views' writer thread of a rebuild needs the lock back after each statement it
    runs, and the thread applying the events, all Python, gives it up only when the switch
    interval ends: at Python's default of 5 ms the writer spent more time waiting for it
    than writing, and became as slow as the thread it overlaps. Nested and concurrent uses
    share one change.
    """
    return _switching.changed(lambda current: min(current, seconds))


class _NotAttempted(Exception):
    """A commit queued behind one that failed."""


POLL_INTERVAL = 0.1


class ViewsBusy(Exception):
    """Another projector (another process) holds the views."""


def views_status(app: PreparatoryMeetings, model: ReadModel) -> dict[str, int]:
    """``{position, store_position, lag}``: how far the views trail the event log."""
    position = model.position()
    store_position = app.recorder.max_notification_id() or 0
    return {
        "position": position,
        "store_position": store_position,
        "lag": max(0, store_position - position),
    }


class Projector:
    """Keeps one read model up to date from one application's notification log.

    In-process, one lock makes it the only writer of its views; across processes, the
    PostgreSQL views are guarded by an advisory lock that a second projector waits for,
    and every batch (on both stores) commits only if the tracking position is still the
    one it started from, so no event is ever applied twice.
    """

    def __init__(
        self,
        app: PreparatoryMeetings,
        model: ReadModel,
        *,
        batch_size: int = BATCH_SIZE,
        rebuild_batch_size: int = REBUILD_BATCH_SIZE,
        poll_interval: float = POLL_INTERVAL,
        stop_event: threading.Event | None = None,
    ) -> None:
        if not 1 <= batch_size <= 10_000 or not 1 <= rebuild_batch_size <= 50_000:
            raise ValueError("batch sizes out of range")
        self.app = app
        self.model = model
        self.batch_size = batch_size
        self.rebuild_batch_size = rebuild_batch_size
        self.poll_interval = poll_interval
        self.projection = ViewProjection(model, app.mapper)
        self.last_error: BaseException | None = None
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._stop = stop_event or threading.Event()
        self._thread: threading.Thread | None = None
        self._listener: threading.Thread | None = None
        self._position: int | None = None
        self._checked_schema = False
        model.waker = self.poke

    # --- catching up ------------------------------------------------------------------------

    @property
    def stopping(self) -> threading.Event:
        return self._stop

    def poke(self) -> None:
        """Wake the projector thread: there are new events to project."""
        self._wake.set()

    def _check_schema(self) -> None:
        if not self._checked_schema:
            if self.model.schema_version() != SCHEMA_VERSION:
                log.warning("views have another schema version: rebuilding them")
                self.model.reset(drop=True)
                self.projection.forget()
                self._position = None
            self._checked_schema = True

    def catch_up(
        self,
        *,
        wait: bool = True,
        batch_size: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Project every event recorded so far; the position the views then reflect.

        Without ``wait``, returns the views' position untouched when another process
        holds the views (PostgreSQL).
        """
        size = batch_size or self.batch_size
        with self._lock:
            if not self.model.acquire_writer(wait=wait, stop=self._stop):
                return self.model.position()
            self._check_schema()
            while not self._stop.is_set():
                start, notes = self._next_page(size)
                if not notes:
                    break
                try:
                    self._position = self.projection.process(notes, start)
                except TrackingMoved as moved:
                    log.info("views moved by another writer (%s); resuming from them", moved)
                    self._position = None
                    continue
                except BaseException:
                    self._position = None
                    raise
                if progress is not None:
                    progress(self._position)
                if len(notes) < size:
                    break
            return self._position if self._position is not None else self.model.position()

    def _next_page(self, size: int, one_step: bool = True) -> tuple[int, list[NoteRow]]:
        """The position the views are at and the notifications after it; after a failed or
        moved batch (no position known), the working set is dropped and the position read
        from the views."""
        if self._position is None:
            self.projection.forget()
            self._position = self.model.position()
        return self._position, read_notes(
            self.app.recorder, self._position, size, one_step=one_step
        )

    def _catch_up_overlapped(
        self,
        size: int,
        progress: Callable[[int], None] | None,
        first: Callable[[], None] | None = None,
    ) -> None:
        """Catch up with the batches committed in a thread of their own, in order, while
        the next ones are read and applied in memory. SQLite gives up the GIL while it
        writes (for the whole of each multi-row statement), so on a machine of two cores
        the writes cost the projection little. Up to :data:`COMMITS_AHEAD` commits wait
        their turn, so that a long one (``first``, which empties the views, or a commit
        that meets a WAL checkpoint) does not hold the projection up; a batch that reads
        the views first waits for every commit before it. After a commit fails, those
        queued behind it are not attempted."""
        projection = self.projection
        pending: deque[tuple[Future[None], int | None]] = deque()
        failed = threading.Event()

        def attempt(job: Callable[..., None], *args: Any) -> None:
            if failed.is_set():
                raise _NotAttempted
            try:
                job(*args)
            except BaseException:
                failed.set()
                raise

        def drain() -> None:
            while pending:
                with suppress(BaseException):
                    pending.popleft()[0].result()
            failed.clear()

        def settle_to(left: int) -> None:
            while len(pending) > left:
                done, position = pending.popleft()
                try:
                    done.result()
                except BaseException:
                    drain()
                    raise
                if progress is not None and position is not None:
                    progress(position)

        with ThreadPoolExecutor(1, thread_name_prefix="prepmeet-views-writer") as writer:
            projection.settle = functools.partial(settle_to, 0)
            if first is not None:
                pending.append((writer.submit(attempt, first), None))
            try:
                while not self._stop.is_set():
                    start, notes = self._next_page(size, one_step=False)
                    if not notes:
                        break
                    try:
                        position, statements = projection.prepare(notes, start)
                        settle_to(COMMITS_AHEAD - 1)
                    except TrackingMoved as moved:
                        log.info("views moved by another writer (%s); resuming from them", moved)
                        self._position = None
                        continue
                    commit = writer.submit(
                        attempt, self.model.commit_batch, start, position, statements
                    )
                    pending.append((commit, position))
                    self._position = position
                    if len(notes) < size:
                        break
                settle_to(0)
            except BaseException:
                drain()
                projection.forget()
                self._position = None
                raise
            finally:
                projection.settle = no_pending_commit

    def rebuild(self, progress: bool = False, *, wait: bool = True) -> int:
        """Empty the views and project the whole log again; the position reached.

        Shows a progress bar on standard error with ``progress``. Waits for a projector of
        another process to stop, or with ``wait=False`` raises :class:`ViewsBusy`.
        """
        with self._lock:
            if not self.model.acquire_writer(wait=wait, stop=self._stop):
                raise ViewsBusy("another projector holds the views; stop it first")
            self.projection.assume_empty()
            self._position = 0
            self._checked_schema = True
            total = self.app.recorder.max_notification_id() or 0
            empty = functools.partial(self.model.reset, indexes=False)
            with (
                collector_paced(),
                switching_often(),
                self.model.bulk_load(),
                _progress_bar(total, progress) as advance,
            ):
                self._catch_up_overlapped(self.rebuild_batch_size, advance, first=empty)
            return self._position if self._position is not None else self.model.position()

    def status(self) -> dict[str, int]:
        """``{position, store_position, lag}``: how far the views trail the log."""
        return views_status(self.app, self.model)

    # --- in a thread ------------------------------------------------------------------------

    def start(self) -> None:
        """Run in a daemon thread: woken by :meth:`poke`, by the store's notifications of new
        events where it has them (PostgreSQL, so writes of other processes wake it too), and
        every ``poll_interval``."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="prepmeet-projector", daemon=True)
        self._thread.start()
        self._listener = self.listen()

    def listen(self) -> threading.Thread | None:
        """Poke this projector on each notification of the store's new events (PostgreSQL),
        in a daemon thread, until stopped."""
        channel = getattr(self.app.recorder, "channel_name", None)
        if not isinstance(channel, str) or self.model.kind != "postgres":
            return None
        thread = threading.Thread(
            target=self.model.listen,
            args=(channel, self.poke, self._stop),
            name="prepmeet-projector-listener",
            daemon=True,
        )
        thread.start()
        return thread

    def _run(self) -> None:
        self.run_until_stopped()

    def run_until_stopped(self) -> None:
        """Catch up whenever poked, and every ``poll_interval``, until stopped."""
        failures = 0
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self.catch_up()
                failures = 0
                self.last_error = None
            except Exception as e:
                failures += 1
                self.last_error = e
                log.exception("projector failed; retrying")
                self._stop.wait(min(5.0, 0.1 * 2**failures))
            self._wake.wait(self.poll_interval)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread (after the batch in hand) and give up the views' lock.

        A thread still at work after ``timeout`` (a read waiting for a store that does not
        answer, which is retried for up to a minute) is not waited for: it ends at its next
        step, and the views' lock goes with its connection when the store is closed.
        """
        self._stop.set()
        self._wake.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.join(timeout)
        if thread is not None and thread.is_alive():
            log.warning("projector still busy after %.0f s; stopping without it", timeout)
            return
        with self._lock:
            self.model.release_writer()
        self._stop.clear()

    def __enter__(self) -> Projector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextmanager
def _progress_bar(total: int, enabled: bool) -> Iterator[Callable[[int], None] | None]:
    if not enabled:
        yield None
        return
    try:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )
    except ImportError:
        start = time.monotonic()

        def report(position: int) -> None:
            rate = position / max(time.monotonic() - start, 1e-9)
            print(f"rebuilt to {position}/{total} ({rate:,.0f} events/s)", file=sys.stderr)

        yield report
        return
    with Progress(
        TextColumn("rebuilding views"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
        transient=False,
    ) as bar:
        task = bar.add_task("rebuild", total=total, rate="")
        start = time.monotonic()

        def advance(position: int) -> None:
            rate = position / max(time.monotonic() - start, 1e-9)
            bar.update(task, completed=min(position, total), rate=f"{rate:,.0f} events/s")

        yield advance
        bar.update(task, completed=total)


def open_store(data_dir: Path, database_url: str | None, attempts: int = 5) -> PreparatoryMeetings:
    """The application on the store, creating its tables if they are missing.

    Processes that start at once on a new PostgreSQL database can collide creating the
    same tables (``tuple concurrently updated``): the loser tries again.
    """
    for attempt in range(1, attempts + 1):
        try:
            return PreparatoryMeetings(env=store_env(data_dir, database_url))
        except (InternalError, IntegrityError, ProgrammingError):
            if attempt == attempts:
                raise
            time.sleep(0.05 * attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def run_projector_forever(
    data_dir: Path,
    database_url: str | None,
    *,
    poll_interval: float = POLL_INTERVAL,
    stop: threading.Event | None = None,
    batch_size: int = BATCH_SIZE,
) -> int:
    """Run a projector until SIGTERM or SIGINT (or ``stop``); the exit status.

    A second projector of the same views (in another process) waits for the first to stop.
    """
    stop = stop or threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, on_signal)
    app = open_store(Path(data_dir), database_url)
    model = open_read_side(Path(data_dir), database_url)
    projector = Projector(
        app, model, batch_size=batch_size, poll_interval=poll_interval, stop_event=stop
    )
    listener: threading.Thread | None = None
    try:
        if not model.acquire_writer(wait=False):
            log.info("another projector holds the views; waiting for it")
            if not model.acquire_writer(wait=True, stop=stop):
                return 0
        log.info("projecting from position %d", model.position())
        listener = projector.listen()
        projector.run_until_stopped()
        return 0
    finally:
        stop.set()
        model.release_writer()
        if listener is not None:
            listener.join(2.0)
        model.close()
        app.close()
        for number, handler in previous.items():
            signal.signal(number, handler)


def main(argv: list[str] | None = None) -> int:
    """``python -m projections.runner DATA_DIR [DATABASE_URL]``: run a projector."""
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m projections.runner DATA_DIR [DATABASE_URL]", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    return run_projector_forever(Path(args[0]), args[1] if len(args) > 1 else None)


if __name__ == "__main__":
    sys.exit(main())
