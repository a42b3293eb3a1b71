"""Concurrency on the write side: group commit, and the per-meeting lock of decisions.

Group commit: a store commits one transaction at a time, and each commit waits for the
disk (``synchronous=FULL`` on SQLite; a table lock through the commit on PostgreSQL), so
saving the events of concurrent commands together costs one commit instead of many. A
command hands its save to :class:`GroupCommit` and waits; the first waiting thread records
everything queued so far in one transaction. When that transaction meets a version
conflict, each save of the batch is recorded on its own, so a conflict fails only the
command that caused it, as if it had saved alone. A store that numbers the log entries at
commit (PostgreSQL) makes appends from several processes to one meeting's log conflict-free;
elsewhere an entry numbered from a stale head conflicts, and is numbered again and retried.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from copy import deepcopy
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from eventsourcing.application import ProcessingEvent
from eventsourcing.domain import DomainEvent
from eventsourcing.persistence import IntegrityError, Recording


@dataclass(frozen=True)
class LogEntry:
    """An entry to append to a meeting's log of proposals, numbered when it is committed.

    The log is one sequence per meeting that every new proposal extends: numbering its
    entries at commit time, in commit order, lets concurrent creations in one meeting share
    a commit instead of conflicting on the log's next version.
    """

    meeting_id: UUID
    proposal_id: str
    theme: str
    actor: str


@dataclass(eq=False)
class _Pending:
    events: list[Any]
    aggregates: dict[Any, Any]
    entry: LogEntry | None
    recordings: list[Recording[UUID]] = field(default_factory=list)
    error: BaseException | None = None
    done: bool = False


Record = Callable[["ProcessingEvent[UUID]"], list[Recording[UUID]]]
Notify = Callable[[list[Recording[UUID]]], None]
LogEvent = Callable[[LogEntry, int], DomainEvent]
LogHead = Callable[[UUID], int]


class GroupCommit:
    """Records the saves of concurrent threads together, one transaction per batch."""

    def __init__(self, record: Record, notify: Notify, log_event: LogEvent, log_head: LogHead):
        self._record = record
        self._notify = notify
        self._log_event = log_event
        self._log_head = log_head
        self._queue: list[_Pending] = []
        self._queue_lock = threading.Lock()
        self._commit_lock = threading.Lock()
        self._heads: dict[UUID, int] = {}

    def save(
        self, processing: ProcessingEvent[UUID], entry: LogEntry | None
    ) -> list[Recording[UUID]]:
        """Record these events (and the log entry), with whatever else is waiting."""
        pending = _Pending(list(processing.events), dict(processing.aggregates), entry)
        with self._queue_lock:
            self._queue.append(pending)
        with self._commit_lock:
            if not pending.done:
                with self._queue_lock:
                    batch, self._queue = self._queue, []
                self._commit(batch)
        if pending.error is not None:
            raise pending.error
        return pending.recordings

    # --- under the commit lock -------------------------------------------------------

    def _next_log_event(self, entry: LogEntry) -> DomainEvent:
        head = self._heads.get(entry.meeting_id)
        if head is None:
            head = self._log_head(entry.meeting_id)
        self._heads[entry.meeting_id] = head + 1
        return self._log_event(entry, head + 1)

    def _commit(self, batch: Sequence[_Pending]) -> None:
        if len(batch) == 1:
            self._commit_alone(batch[0])
            return
        heads = dict(self._heads)
        combined: ProcessingEvent[UUID] = ProcessingEvent()
        sizes = []
        for p in batch:
            events = [*p.events, *([self._next_log_event(p.entry)] if p.entry else [])]
            sizes.append(len(events))
            combined.events.extend(events)
            combined.aggregates.update(p.aggregates)
        try:
            recordings = self._record(combined)
        except IntegrityError:
            self._heads = heads
            for p in batch:
                self._commit_alone(p)
            return
        except BaseException as error:
            self._heads = heads
            for p in batch:
                p.error, p.done = error, True
            return
        start = 0
        for p, size in zip(batch, sizes, strict=True):
            p.recordings, p.done = recordings[start : start + size], True
            start += size
            self._recorded_head(p)
        self._notify(recordings)

    def _recorded_head(self, p: _Pending) -> None:
        """Keep the head of the log as recorded: a store that numbers the log at commit
        may have given the entry a later version than the one it came with."""
        if p.entry is not None and p.recordings:
            self._heads[p.entry.meeting_id] = p.recordings[-1].notification.originator_version

    def _commit_alone(self, p: _Pending) -> None:
        # a log entry that conflicts was numbered from a stale head (another process wrote
        # the log): read the head again and try once more
        for attempt in range(2 if p.entry else 1):
            processing: ProcessingEvent[UUID] = ProcessingEvent()
            processing.events = [*p.events, *([self._next_log_event(p.entry)] if p.entry else [])]
            processing.aggregates = p.aggregates
            try:
                p.recordings = self._record(processing)
            except BaseException as error:
                if p.entry is not None:
                    self._heads.pop(p.entry.meeting_id, None)
                if isinstance(error, IntegrityError) and attempt == 0 and p.entry:
                    continue
                p.error = error
            else:
                self._recorded_head(p)
                self._notify(p.recordings)
            break
        p.done = True


class SharedExclusiveLock:
    """Many holders of the shared side at once, or one of the exclusive side.

    A thread waiting for the exclusive side holds back new shared holders, so that a
    stream of decisions cannot starve the forwarding of the outcome.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._shared = 0
        self._exclusive = False
        self._waiting = 0
        self.exclusive_holds = 0
        """How many holds of the exclusive side have ended: a holder of the shared side that
        read this before it read what an exclusive holder may change, and reads the same
        number now, knows that no such change came in between."""

    def locked(self) -> bool:
        """Whether a thread holds the exclusive side."""
        with self._cond:
            return self._exclusive

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._exclusive and not self._waiting)
            self._shared += 1
        try:
            yield
        finally:
            with self._cond:
                self._shared -= 1
                if not self._shared:
                    self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            self._waiting += 1
            try:
                self._cond.wait_for(lambda: not self._exclusive and not self._shared)
            finally:
                self._waiting -= 1
            self._exclusive = True
        try:
            yield
        finally:
            with self._cond:
                self._exclusive = False
                self.exclusive_holds += 1
                self._cond.notify_all()


class AggregateCache:
    """Aggregates as last read, brought up to date on every read without a shared lock.

    A read asks the store for the events after the cached version (one query, which runs
    beside other reads of the same aggregate), applies them to a copy, and hands out a copy
    of its own: the cached object is never changed in place. Every command of a meeting
    reads the meeting, so a lock per aggregate around the query, as a fast-forwarding cache
    takes, would make them wait for one another.

    ``stamp`` tells whether anything was recorded since (see
    :class:`domain.sqlite_store.WalStamp`): an aggregate read when the stamp was what it is
    now is current without a query. ``None`` from it means unknown, and the store is asked.
    """

    def __init__(
        self,
        reconstruct: Callable[[UUID], Any],
        newer: Callable[[UUID, int], Iterable[Any]],
        maxsize: int = 4_000,
        stamp: Callable[[], Hashable | None] = lambda: None,
    ) -> None:
        self._reconstruct = reconstruct
        self._newer = newer
        self._maxsize = maxsize
        self._stamp = stamp
        self._items: OrderedDict[UUID, tuple[Any, Hashable | None]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, aggregate_id: UUID, copy: bool = True) -> Any:
        """A current copy of the aggregate, the caller's own; ``AggregateNotFoundError`` if
        none. With ``copy`` false, the cached object itself, which must only be read."""
        stamp = self._stamp()  # before reading: what is recorded after it changes it
        with self._lock:
            entry = self._items.get(aggregate_id)
            if entry is not None:
                self._items.move_to_end(aggregate_id)
        if entry is None:
            current = self._reconstruct(aggregate_id)
        else:
            cached, seen = entry
            if stamp is not None and seen == stamp:
                return deepcopy(cached) if copy else cached
            current = cached
            for event in self._newer(aggregate_id, cached.version):
                if current is cached:
                    current = deepcopy(cached)
                current = event.mutate(current)
        with self._lock:
            known = self._items.get(aggregate_id)
            if known is None or known[0].version <= current.version:
                if known is not None and known[0].version == current.version:
                    current = known[0]
                self._items[aggregate_id] = (current, stamp)
                self._items.move_to_end(aggregate_id)
                while len(self._items) > self._maxsize:
                    self._items.popitem(last=False)
        return deepcopy(current) if copy else current


class KeyedLocks:
    """One lock per key, held only while some thread wants it (so the table stays small).

    Commands on one aggregate in one process take its lock from load to save: of two such
    commands only one could be recorded at a time anyway, and without the lock the other
    would meet a version conflict and start again.
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[Any, tuple[threading.Lock, int]] = {}

    @contextmanager
    def hold(self, key: Any) -> Iterator[None]:
        with self._guard:
            lock, users = self._locks.get(key, (None, 0))
            if lock is None:
                lock = threading.Lock()
            self._locks[key] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._guard:
                lock, users = self._locks[key]
                if users == 1:
                    del self._locks[key]
                else:
                    self._locks[key] = (lock, users - 1)
