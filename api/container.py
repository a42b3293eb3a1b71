"""The composition root: builds the application, the read side and the signing key once."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, ParamSpec, TypeVar

from eventsourcing.persistence import PersistenceError
from starlette.concurrency import run_in_threadpool

from api.errors import HttpProblem
from api.observability import Metrics
from api.settings import Settings
from api.signing import KEY_FILE, load_or_create_key, sign
from domain.application import Forwarding, PreparatoryMeetings, Result
from domain.errors import InvalidInput
from domain.meeting import Meeting
from domain.store import StoreUnavailable, check_postgres_durability, store_env
from projections.compile import forwarded_form
from projections.documents import json_bytes
from projections.runner import Projector
from projections.views import ReadModel, open_read_side

log = logging.getLogger("prepmeet")
P = ParamSpec("P")
T = TypeVar("T")


def open_application(
    settings: Settings, *, create_tables: bool | None = None
) -> PreparatoryMeetings:
    """The application on the configured store; one clear line when the store is unusable."""
    create = settings.create_tables if create_tables is None else create_tables
    env = store_env(settings.data_dir, settings.database_url, create_table=create)
    try:
        app = PreparatoryMeetings(env=env)
    except PersistenceError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        where = "PostgreSQL" if settings.database_url else "SQLite"
        raise StoreUnavailable(f"cannot use the {where} store: {first}") from None
    if settings.database_url:
        recorder: Any = app.recorder
        try:
            relied_on = check_postgres_durability(recorder.datastore)
        except StoreUnavailable:
            app.close()
            raise
        log.info(
            "PostgreSQL store relies on %s",
            ", ".join(f"{name}={value}" for name, value in relied_on.items()),
        )
        if relied_on["full_page_writes"].lower() == "off":
            log.warning(
                "PostgreSQL runs with full_page_writes=off: a crash can leave torn pages "
                "unless the file system rules them out"
            )
    return app


class RenderCache:
    """Rendered documents by key, least recently used first out, bounded in bytes.

    A render runs in a thread of its own, and a request waits for it at most ``timeout``
    seconds (0: without a bound), then answers 503. Python cannot stop a thread: the render
    goes on, and when it ends its bytes are kept, so a retry is served from the cache.
    Requests for a key that is being rendered wait for that render rather than start another.
    """

    def __init__(self, max_bytes: int = 128 * 1024 * 1024, timeout: float = 20.0) -> None:
        self.max_bytes = max_bytes
        self.timeout = timeout
        self._items: OrderedDict[tuple[Any, ...], bytes] = OrderedDict()
        self._digests: dict[int, tuple[bytes, bytes]] = {}
        self._pending: dict[tuple[Any, ...], Future[bytes]] = {}
        self._size = 0
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...], render: Callable[[], bytes]) -> bytes:
        found = self._lookup(key, render)
        if isinstance(found, bytes):
            return found
        try:
            return found.result(timeout=self.timeout or None)
        except TimeoutError:
            raise self._timed_out() from None

    async def aget(self, key: tuple[Any, ...], render: Callable[[], bytes]) -> bytes:
        """:meth:`get` for a coroutine: a render in progress is awaited, not waited for."""
        found = self._lookup(key, render)
        if isinstance(found, bytes):
            return found
        try:
            # shielded: giving up on a render must not cancel it for the others waiting
            return await asyncio.wait_for(
                asyncio.shield(asyncio.wrap_future(found)), self.timeout or None
            )
        except TimeoutError:
            raise self._timed_out() from None

    def _lookup(self, key: tuple[Any, ...], render: Callable[[], bytes]) -> bytes | Future[bytes]:
        """The bytes when they are held; else the render of them, started if need be."""
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
                return found
            future = self._pending.get(key)
            if future is None:
                future = self._pending[key] = Future()
                future.set_running_or_notify_cancel()  # runs to its end, whoever gives up
                thread = threading.Thread(
                    target=self._render, args=(key, render, future), daemon=True, name="render"
                )
                thread.start()
            return future

    def _timed_out(self) -> HttpProblem:
        return HttpProblem(
            503,
            f"rendering the document took more than {self.timeout:g} s; retry shortly",
            {"Retry-After": "5"},
            "render-timeout",
        )

    def sha256(self, body: bytes) -> bytes:
        """The SHA-256 of ``body``: taken once for the bytes this cache holds."""
        with self._lock:
            known = self._digests.get(id(body))
        if known is not None and known[0] is body:
            return known[1]
        return hashlib.sha256(body).digest()

    def _render(
        self, key: tuple[Any, ...], render: Callable[[], bytes], future: Future[bytes]
    ) -> None:
        try:
            data = render()
            digest = hashlib.sha256(data).digest()
        except BaseException as e:
            with self._lock:
                self._pending.pop(key, None)
            future.set_exception(e)
            return
        with self._lock:
            self._pending.pop(key, None)
            if key not in self._items:
                self._items[key] = data
                self._digests[id(data)] = (data, digest)
                self._size += len(data)
            while self._size > self.max_bytes and len(self._items) > 1:
                _, dropped = self._items.popitem(last=False)
                self._digests.pop(id(dropped), None)
                self._size -= len(dropped)
        future.set_result(data)


class Container:
    """Everything one server process needs, built from its settings."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app = open_application(settings)
        try:
            self.views: ReadModel = open_read_side(settings.data_dir, settings.database_url)
        except Exception:
            self.app.close()
            raise
        self.projector: Projector | None = (
            Projector(self.app, self.views) if settings.embedded_projector else None
        )
        key_file = settings.signing_key_file or settings.data_dir / KEY_FILE
        self.signing_key = load_or_create_key(key_file)
        self.streams: dict[str, int] = {}
        self.metrics = Metrics()
        self.renders = RenderCache(timeout=settings.render_timeout)
        # A read of a local SQLite file takes microseconds and never waits for the writer
        # (WAL), less than a hop to the thread pool costs under load: on SQLite the routes
        # read on the event loop. A PostgreSQL read is a network round trip: it runs in the
        # pool, so that a slow server cannot stall every request.
        self.inline_reads = settings.database_url is None

    async def read(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``fn`` (a read of the store, or a check that reads it), where reads run best."""
        if self.inline_reads:
            return fn(*args, **kwargs)
        return await run_in_threadpool(fn, *args, **kwargs)

    async def views_ready(self, after: int | None = None) -> int:
        """:meth:`await_views` without holding up the event loop: answered there when the
        views are known to be caught up, waited for in the thread pool when they are not."""
        if self.inline_reads:
            target = self._read_target(after)
            if self.views.reflects(target):
                return target
        return await run_in_threadpool(self.await_views, after)

    def start(self) -> None:
        if self.projector is not None:
            self.projector.start()

    def poke(self) -> None:
        if self.projector is not None:
            self.projector.poke()

    def await_views(self, after: int | None = None) -> int:
        """Wait until the views reflect every write so far (and ``after``); their position.

        A client that has just written therefore reads its write, with or without ``after``.
        """
        target = self._read_target(after)
        self.poke()
        if not self.views.wait_for(target, self.settings.read_wait_timeout):
            raise HttpProblem(
                503,
                f"the views have not reached position {target} yet; retry shortly",
                {"Retry-After": "1"},
                "views-lagging",
            )
        return target

    def _read_target(self, after: int | None) -> int:
        """The position a read must see: every write so far, and ``after``."""
        last = self.app.last_position()
        if after is not None and after > last:
            # no write has reached it: waiting could only tie up a worker and end in a 503
            raise InvalidInput(f"after {after} is past the last position {last}", "after")
        return max(after or 0, last)

    def forward_meeting(
        self,
        actor: str,
        meeting_id: str,
        expected_version: int | None = None,
        idempotency_key: str | None = None,
    ) -> Result:
        """Compile the live outcome, seal and sign it, and record it as the next version."""

        def compile_outcome(meeting: Meeting) -> Forwarding:
            self.await_views()
            live = self.views.document(meeting.id)
            doc = forwarded_form(live, len(meeting.outcome_versions) + 1)
            doc["signature"] = sign(self.signing_key, doc)
            return Forwarding(
                document=json_bytes(doc).decode(),
                sha256=doc["sha256"],
                document_position=live["position"],
                signature=doc["signature"],
            )

        result = self.app.forward_meeting(
            actor, meeting_id, compile_outcome, expected_version, idempotency_key
        )
        self.poke()
        return result

    def close(self) -> None:
        """Stop the projector and close the views and the store, each whatever became of
        the one before."""
        try:
            if self.projector is not None:
                self.projector.stop()
        finally:
            try:
                self.views.close()
            finally:
                self.app.close()
