"""The aggregate cache: a read asks the store only when something may have been recorded."""

from __future__ import annotations

from dataclasses import dataclass, replace
from uuid import UUID, uuid4

import pytest
from eventsourcing.application import AggregateNotFoundError

from domain.concurrency import AggregateCache


@dataclass(frozen=True)
class Counted:
    version: int
    total: int = 0


@dataclass(frozen=True)
class Added:
    version: int
    amount: int

    def mutate(self, aggregate: Counted) -> Counted:
        return replace(aggregate, version=self.version, total=aggregate.total + self.amount)


class Store:
    def __init__(self) -> None:
        self.events: dict[UUID, list[Added]] = {}
        self.reads = 0
        self.stamp: str | None = "s0"

    def record(self, aggregate_id: UUID, amount: int) -> None:
        events = self.events.setdefault(aggregate_id, [])
        events.append(Added(len(events) + 1, amount))
        if self.stamp is not None:
            self.stamp = f"s{sum(map(len, self.events.values()))}"

    def reconstruct(self, aggregate_id: UUID) -> Counted:
        self.reads += 1
        if aggregate_id not in self.events:
            raise AggregateNotFoundError(aggregate_id)
        return self.apply(Counted(0), self.events[aggregate_id])

    def newer(self, aggregate_id: UUID, version: int) -> list[Added]:
        self.reads += 1
        return self.events[aggregate_id][version:]

    @staticmethod
    def apply(aggregate: Counted, events: list[Added]) -> Counted:
        for event in events:
            aggregate = event.mutate(aggregate)
        return aggregate


@pytest.fixture
def store() -> Store:
    return Store()


def cache_of(store: Store) -> AggregateCache:
    return AggregateCache(store.reconstruct, store.newer, stamp=lambda: store.stamp)


def test_an_unchanged_stamp_answers_from_the_cache_and_a_new_one_asks_the_store(
    store: Store,
) -> None:
    cache, a, b = cache_of(store), uuid4(), uuid4()
    store.record(a, 2)
    store.record(b, 5)
    assert cache.get(a).total == 2
    assert cache.get(b).total == 5
    assert store.reads == 2
    for _ in range(3):
        assert cache.get(a, copy=False).total == 2
        assert cache.get(b).total == 5
    assert store.reads == 2
    store.record(a, 3)
    assert cache.get(a) == Counted(2, 5)
    assert cache.get(b) == Counted(1, 5)  # asked too: the stamp cannot say which one changed
    assert store.reads == 4
    assert cache.get(a) == Counted(2, 5) and cache.get(b) == Counted(1, 5)
    assert store.reads == 4


def test_without_a_stamp_every_read_asks_the_store(store: Store) -> None:
    store.stamp = None
    cache, a = cache_of(store), uuid4()
    store.record(a, 1)
    for n in range(1, 4):
        assert cache.get(a).total == n
        store.record(a, 1)
    assert store.reads == 3
    with pytest.raises(AggregateNotFoundError):
        cache.get(uuid4())


def test_copies_are_the_callers_own_and_the_cached_one_never_changes(store: Store) -> None:
    cache, a = cache_of(store), uuid4()
    store.record(a, 1)
    shared = cache.get(a, copy=False)
    own = cache.get(a)
    assert own == shared and own is not shared
    store.record(a, 1)
    assert cache.get(a, copy=False) == Counted(2, 2)
    assert shared == Counted(1, 1)
