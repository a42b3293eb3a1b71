"""The phases of a run; each measures its figures repetition by repetition, every figure
beside its ceiling (or baseline) in the same repetition.

1. SQLite, ``prepmeet serve``: figures 1, 2, 11 (write path, projection lag), 3 (read your
   writes) and the concurrency sweep, against the echo app and raw ``save()``.
2. SQLite, the same data behind ``bench.docapp`` (the service plus a fixed-bytes route):
   figures 5 (cold documents), 4 (warm documents vs the same bytes from memory) and 8.
3. SQLite stores with long histories seeded by direct saves: 6 (rebuild vs raw reads),
   7 (create p50 with a long log) and 9 (memory).
4. PostgreSQL: 10 (two API workers and a projector vs one worker).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import scenarios
from bench.context import Context
from bench.load import LoadResult, Sample, percentile
from bench.procs import HarnessError, Server, own_database, prepmeet_server, service_env
from bench.procs import uvicorn_server as uvicorn_app
from bench.report import Figure
from bench.seed import Api, Person, cli_user, proposal_body

VIEW_FILES = ("views.sqlite", "views.sqlite-wal", "views.sqlite-shm", "views.sqlite.lock")


def ms(seconds: float) -> float:
    return seconds * 1000


def mb(n: int) -> float:
    return n / 1024 / 1024


@dataclass
class Cast:
    """The people of a store: a secretariat, rapporteurs (one per client) and a chair."""

    api: Api
    secretariat: Person
    rapporteurs: list[Person]
    chair: Person

    @classmethod
    async def create(cls, api: Api, secretariat: Person, rapporteurs: int) -> Cast:
        sec = await api.me(secretariat)
        raps = await api.users(sec, "Rapporteur", rapporteurs)
        chair = await api.user(sec, "Chair", "Norway")
        return cls(api, sec, raps, chair)

    async def meeting(self, title: str) -> str:
        """A fresh open meeting with every rapporteur and the chair on every theme."""
        return await self.api.meeting(self.secretariat, title, [self.chair], self.rapporteurs)


async def response_size(api: Api, path: str, who: Person, body: Any) -> int:
    r = await api.client.post(path, json=body, headers=who.auth)
    if r.status_code >= 300:
        raise HarnessError(f"POST {path}: {r.status_code} {r.text[:200]}")
    return len(r.content)


# --- 1. SQLite: write path, lag, read your writes, sweep ---------------------------------------


async def sqlite_phase(ctx: Context, echo: Server) -> None:
    plan = ctx.plan
    data = ctx.tmp / "sqlite"
    env = service_env(data_dir=str(data))
    secretariat = await asyncio.to_thread(
        cli_user, env, ctx.tmp, "Amina Qureshi", "UN DPO", secretariat=True
    )
    server = await ctx.start(prepmeet_server("prepmeet-sqlite", data, ctx.tmp))
    api = Api(server.base_url)
    try:
        cast = await Cast.create(api, secretariat, plan.clients)
        docs = await seed_documents(ctx, cast) if plan.docs else None
        await write_figures(ctx, server, echo, cast)
        await ryw_figures(ctx, server, cast)
        if plan.sweep:
            await sweep(ctx, server, echo, cast)
        ctx.report.extra["sqlite_server_rss_mb_at_end"] = round(mb(server.rss()), 1)
    finally:
        await api.close()
        await ctx.stop(server)
    ctx.report.extra.setdefault("phase_seconds", {})["sqlite_writes"] = round(
        time.monotonic() - ctx.started, 1
    )
    if docs is not None:
        t0 = time.monotonic()
        await document_figures(ctx, data, cast, docs)
        ctx.report.extra["phase_seconds"]["documents"] = round(time.monotonic() - t0, 1)


@dataclass
class Documents:
    meetings: dict[int, str]
    spares: list[str]
    """Submitted proposals of the large meeting, approved one by one to change it."""


async def seed_documents(ctx: Context, cast: Cast) -> Documents:
    """Two meetings with ``doc_sizes`` approved recommendations, over HTTP."""
    plan = ctx.plan
    big, small = plan.doc_sizes
    spares_needed = 2 * plan.cold_samples * plan.reps + 2
    meetings: dict[int, str] = {}
    spares: list[str] = []
    for size, extra in ((big, spares_needed), (small, 0)):
        t0 = time.perf_counter()
        mid = await cast.meeting(f"Meeting with {size} recommendations")
        ids = await cast.api.proposals(cast.rapporteurs, mid, size + extra)
        await cast.api.approve_all(cast.chair, ids[:size])
        meetings[size] = mid
        spares += ids[size:]
        ctx.say(f"seeded {size} recommendations over HTTP in {time.perf_counter() - t0:.1f} s")
    if big != 1000:
        ctx.note(f"{plan.mode}: documents of {big} and {small} recommendations, not 1,000 and 100")
    return Documents(meetings, spares)


async def write_figures(ctx: Context, server: Server, echo: Server, cast: Cast) -> None:
    """Figures 1, 2 and 11 with the echo and store ceilings, repetition by repetition.

    Each repetition writes into a meeting of its own, so that it finds the same state."""
    plan, report = ctx.plan, ctx.report
    api = cast.api
    probe_meeting = await cast.meeting("Probe")
    create_body = proposal_body("technology")
    create_size = await response_size(
        api, f"/api/v1/meetings/{probe_meeting}/proposals", cast.rapporteurs[0], create_body
    )
    probe = await api.propose(cast.rapporteurs[0], probe_meeting)
    approve_body = {"note": "agreed"}
    approve_size = await response_size(
        api, f"/api/v1/proposals/{probe['id']}/approve", cast.chair, approve_body
    )
    ctx.report.extra["shapes"] = {
        "create_request_bytes": len(str(create_body)),
        "create_response_bytes": create_size,
        "approve_response_bytes": approve_size,
    }
    echo_name = "echo def, same body and response size"
    f1 = report.add(
        Figure(
            "1",
            f"create-and-submit proposals, {plan.clients} clients, 1 worker",
            "req/s",
            base_name=echo_name,
            target=(">=", 0.5),
        )
    )
    f1a = Figure(
        "1a",
        "create-and-submit vs async def echo",
        "req/s",
        base_name="echo async def",
        note="the thread pool's share: a def route cannot reach the async def echo",
    )
    if plan.async_echo:
        report.add(f1a)
    f1s = report.add(
        Figure(
            "1s",
            f"create-and-submit vs raw save() (SQLite, {plan.clients} threads)",
            "req/s",
            base_name="save() calls/s",
            note="store ceiling: one new aggregate with three events per save(), as a create",
        )
    )
    f2 = report.add(
        Figure(
            "2",
            f"approve decisions on existing proposals, {plan.clients} clients",
            "req/s",
            base_name=echo_name,
            target=(">=", 0.4),
        )
    )
    f11 = report.add(
        Figure(
            "11",
            f"projection lag p99 under the load of #1 ({plan.clients} clients)",
            "ms",
            target=("<=", 50.0),
            on="value",
            note="from each create response to the first /readyz showing its position (the "
            "middle of that request); upper bounds and /readyz round trips in the details",
        )
    )
    for rep in range(plan.reps):
        ctx.say(f"write figures, repetition {rep + 1}/{plan.reps}")
        meeting = await cast.meeting(f"Load {rep + 1}")
        echo_c = await ctx.load(
            echo.base_url, scenarios.echo("/echo/def", create_body, create_size)
        )
        echo_ca = (
            await ctx.load(echo.base_url, scenarios.echo("/echo/async", create_body, create_size))
            if plan.async_echo
            else None
        )
        created: list[str] = []
        async with ctx.profiled("1", server, rep):
            made = await ctx.load(
                server.base_url, scenarios.create(meeting, cast.rapporteurs, created)
            )
        lag, lag_load = await lag_run(ctx, server, cast, meeting, created)
        store = await asyncio.to_thread(
            ctx.store_op,
            "save",
            str(ctx.tmp / f"ceiling-sqlite-{rep}"),
            "--threads",
            str(plan.clients),
            "--seconds",
            str(plan.store_seconds),
        )
        echo_a = await ctx.load(
            echo.base_url, scenarios.echo("/echo/def", approve_body, approve_size)
        )
        pool = deque(created)
        async with ctx.profiled("2", server, rep):
            approved = await ctx.load(server.base_url, scenarios.approve(cast.chair, pool))
        if approved.window < plan.duration * 0.8:
            ctx.note(
                f"repetition {rep + 1}: figure 2 ran out of submitted proposals after "
                f"{approved.window:.2f} s ({len(approved.ok)} approvals)"
            )
        f1.values.append(made.throughput)
        f1.base.append(echo_c.throughput)
        if echo_ca is not None:
            f1a.values.append(made.throughput)
            f1a.base.append(echo_ca.throughput)
            f1a.detail.append({"echo_async": echo_ca.summary()})
        f1s.values.append(made.throughput)
        f1s.base.append(float(store["saves_per_s"]))
        f2.values.append(approved.throughput)
        f2.base.append(echo_a.throughput)
        f11.values.append(lag["p99_ms"])
        f1.detail.append({"create": made.summary(), "echo": echo_c.summary()})
        f1s.detail.append(store)
        f2.detail.append({"approve": approved.summary(), "echo": echo_a.summary()})
        f11.detail.append({"lag": lag, "load": lag_load.summary()})
        ctx.say(
            f"  create {made.throughput:.0f}/s (echo {echo_c.throughput:.0f}/s, save() "
            f"{store['saves_per_s']:.0f}/s), approve {approved.throughput:.0f}/s (echo "
            f"{echo_a.throughput:.0f}/s), lag p99 {lag['p99_ms']:.1f} ms"
        )


async def lag_run(
    ctx: Context, server: Server, cast: Cast, meeting: str, created: list[str]
) -> tuple[dict[str, Any], LoadResult]:
    """Figure 1's load again with a /readyz sampler beside it: the projection lag."""
    commands: list[tuple[float, int]] = []
    done = asyncio.Event()

    def keep(sample: Sample) -> None:
        if sample.ok and isinstance(sample.data, int):
            commands.append((sample.end, sample.data))

    async def drive() -> LoadResult:
        try:
            return await ctx.load(
                server.base_url,
                scenarios.create(meeting, cast.rapporteurs, created),
                on_sample=keep,
            )
        finally:
            done.set()

    def wanted() -> int:
        return max((p for _, p in commands), default=0)

    async with ctx.profiled("11", server):
        result, samples = await asyncio.gather(
            drive(), scenarios.sample_readyz(server.base_url, done, wanted)
        )
    return scenarios.projection_lags(commands, samples), result


async def ryw_figures(ctx: Context, server: Server, cast: Cast) -> None:
    """Figure 3: a write then a list that shows it (p99) vs the write alone (p99)."""
    plan, report = ctx.plan, ctx.report
    for clients in plan.ryw_clients:
        main = clients == plan.clients
        figure = report.add(
            Figure(
                "3" if main else f"3/{clients}",
                f"write then read-your-write p99, {clients} client{'s' * (clients > 1)}",
                "ms",
                base_name="write alone p99",
                target=("<=", 2.0),
                note="each client lists its own meeting with ?after=<position> and checks the "
                "new proposal is in it",
            )
        )
        for rep in range(plan.reps):
            ctx.say(f"read your writes, {clients} clients, repetition {rep + 1}/{plan.reps}")
            alone = scenarios.ReadYourWrite(cast.secretariat, cast.rapporteurs, read=False)
            both = scenarios.ReadYourWrite(cast.secretariat, cast.rapporteurs, read=True)
            await alone.prepare(server.base_url, clients)
            await both.prepare(server.base_url, clients)
            w = await ctx.load(server.base_url, alone, concurrency=clients)
            async with ctx.profiled("3" if main else f"3-{clients}", server, rep):
                wr = await ctx.load(server.base_url, both, concurrency=clients)
            figure.values.append(ms(wr.p(99)))
            figure.base.append(ms(w.p(99)))
            write_part = [s.data for s in wr.ok if isinstance(s.data, float)]
            figure.detail.append(
                {
                    "write_alone": w.summary(),
                    "write_then_read": wr.summary(),
                    "write_part_p99_ms": round(ms(percentile(write_part, 99)), 3),
                    "not_seen": both.missing,
                }
            )
            if both.missing:
                ctx.note(
                    f"figure 3 ({clients} clients): {both.missing} reads after a write did not "
                    "show the new proposal"
                )


async def sweep(ctx: Context, server: Server, echo: Server, cast: Cast) -> None:
    """Throughput and latency against concurrency: the echoes and create-and-submit."""
    plan = ctx.plan
    body = proposal_body("technology")
    size = int(ctx.report.extra["shapes"]["create_response_bytes"])
    series: dict[str, list[dict[str, Any]]] = {"echo def": [], "echo async def": [], "create": []}
    for clients in plan.sweep:
        ctx.say(f"sweep: {clients} clients")
        kw: dict[str, Any] = {"concurrency": clients, "duration": plan.sweep_duration}
        for name, path in (("echo def", "/echo/def"), ("echo async def", "/echo/async")):
            result = await ctx.load(echo.base_url, scenarios.echo(path, body, size), **kw)
            series[name].append(result.summary())
        meeting = await cast.meeting(f"Sweep {clients}")
        result = await ctx.load(server.base_url, scenarios.create(meeting, cast.rapporteurs), **kw)
        series["create"].append(result.summary())
    ctx.report.sweep = series


# --- 2. documents ---------------------------------------------------------------------------------


async def document_figures(ctx: Context, data: Path, cast: Cast, docs: Documents) -> None:
    """Figures 5, 4 and 8, on the service wrapped with a fixed-bytes route (bench.docapp)."""
    plan, report = ctx.plan, ctx.report
    server = await ctx.start(
        uvicorn_app(
            "prepmeet-docapp",
            "bench.docapp:create_app",
            ctx.tmp,
            factory=True,
            env=service_env(data_dir=str(data)),
        )
    )
    api = Api(server.base_url)
    big, small = plan.doc_sizes
    reader = cast.chair
    path = {n: f"/api/v1/meetings/{mid}/recommendations" for n, mid in docs.meetings.items()}
    spares = deque(docs.spares)
    try:
        await api.caught_up()

        async def change() -> None:
            """Approve one more proposal of the large meeting; wait for the views."""
            position = int((await api.approve(cast.chair, spares.popleft()))["position"])
            await api.wait_views(position)

        async def one(fmt: str, size: int) -> tuple[float, bytes]:
            t0 = time.perf_counter()
            r = await api.client.get(path[size], params={"format": fmt}, headers=reader.auth)
            elapsed = time.perf_counter() - t0
            if r.status_code != 200:
                raise HarnessError(f"download {fmt}: {r.status_code} {r.text[:200]}")
            return elapsed, r.content

        f5 = report.add(
            Figure(
                "5",
                f"cold PDF download (first after a change), {big} recommendations",
                "ms",
                base_name="cold JSON",
                target=("<=", 10.0),
                note="a change (one approval), the views caught up, then the first download",
            )
        )
        for rep in range(plan.reps):
            ctx.say(f"cold documents, repetition {rep + 1}/{plan.reps}")
            cold: dict[str, list[float]] = {"json": [], "pdf": []}
            async with ctx.profiled("5", server, rep):
                for _ in range(plan.cold_samples):
                    for fmt in ("json", "pdf"):
                        await change()
                        cold[fmt].append((await one(fmt, big))[0])
            f5.values.append(ms(statistics.median(cold["pdf"])))
            f5.base.append(ms(statistics.median(cold["json"])))
            f5.detail.append(
                {"cold_ms": {k: [round(ms(v), 2) for v in vs] for k, vs in cold.items()}}
            )

        f4 = {
            fmt: report.add(
                Figure(
                    f"4-{fmt}",
                    f"warm {fmt.upper()} download, {big} recommendations, {plan.clients} clients",
                    "req/s",
                    base_name="same bytes from memory, same app",
                    target=(">=", 0.8),
                )
            )
            for fmt in ("json", "pdf")
        }
        for fmt in ("json", "pdf"):
            await one(fmt, big)  # warm
            body = (await one(fmt, big))[1]
            await store_bytes(api, reader, fmt, body)
            report.extra[f"document_bytes_{fmt}_{big}"] = len(body)
        duration = plan.doc_duration or plan.duration
        for rep in range(plan.reps):
            ctx.say(f"warm documents, repetition {rep + 1}/{plan.reps}")
            for fmt in ("json", "pdf"):
                mem = await ctx.load(
                    server.base_url,
                    scenarios.download(f"/__bench__/bytes/{fmt}", reader),
                    duration=duration,
                )
                async with ctx.profiled(f"4-{fmt}", server, rep):
                    real = await ctx.load(
                        server.base_url,
                        scenarios.download(path[big], reader, {"format": fmt}),
                        duration=duration,
                    )
                f4[fmt].values.append(real.throughput)
                f4[fmt].base.append(mem.throughput)
                f4[fmt].detail.append({"download": real.summary(), "memory": mem.summary()})

        f8 = {
            fmt: report.add(
                Figure(
                    f"8-{fmt}",
                    f"warm {fmt.upper()} download time, {big} vs {small} recommendations",
                    "ms",
                    base_name=f"{small} recommendations",
                    target=("<=", 2.0),
                    note="median of one download at a time, the two sizes alternating",
                )
            )
            for fmt in ("json", "pdf")
        }
        for fmt in ("json", "pdf"):
            await one(fmt, small)
            report.extra[f"document_bytes_{fmt}_{small}"] = len((await one(fmt, small))[1])
        for _rep in range(plan.reps):
            for fmt in ("json", "pdf"):
                times: dict[int, list[float]] = {big: [], small: []}
                for _ in range(plan.warm_downloads):
                    for size in (big, small):
                        times[size].append((await one(fmt, size))[0])
                f8[fmt].values.append(ms(statistics.median(times[big])))
                f8[fmt].base.append(ms(statistics.median(times[small])))
    finally:
        await api.close()
        await ctx.stop(server)


async def store_bytes(api: Api, who: Person, name: str, body: bytes) -> None:
    """Put ``body`` into the docapp's memory route, in pieces under the body limit."""
    piece = 200 * 1024
    for i in range(0, max(len(body), 1), piece):
        r = await api.client.put(
            f"/__bench__/bytes/{name}",
            params={"append": "true" if i else "false"},
            content=body[i : i + piece],
            headers={"content-type": "application/octet-stream", **who.auth},
        )
        if r.status_code != 200:
            raise HarnessError(f"could not store the {name} bytes: {r.status_code} {r.text[:200]}")


# --- 3. history -----------------------------------------------------------------------------------


async def history_phase(ctx: Context) -> None:
    """Figures 6, 7 and 9 on stores seeded with direct saves (many aggregates per save())."""
    plan, report = ctx.plan, ctx.report
    assert plan.history is not None
    small_n, big_n = plan.history
    dirs = {small_n: ctx.tmp / "history-small", big_n: ctx.tmp / "history-big"}
    seeded: dict[int, dict[str, Any]] = {}
    for n, d in dirs.items():
        ctx.say(f"seeding {n:,} events of history with direct saves")
        seeded[n] = await asyncio.to_thread(ctx.store_op, "seed", str(d), "--events", str(n))
        ctx.say(f"  {seeded[n]['events']:,} events in {seeded[n]['seconds']:.1f} s")
    report.extra["history_seed"] = {str(k): v for k, v in seeded.items()}
    small_events, big_events = seeded[small_n]["events"], seeded[big_n]["events"]
    if big_n < 200_000:
        ctx.note(f"{plan.mode}: figures 6, 7 and 9 use {big_events:,} events, not 200,000")

    f6 = report.add(
        Figure(
            "6",
            f"views rebuild, {big_events:,} events (Projector API)",
            "events/s",
            base_name="raw select_notifications, same page size",
            target=(">=", 0.3),
        )
    )
    for rep in range(plan.reps):
        ctx.say(f"rebuild, repetition {rep + 1}/{plan.reps}")
        both = await asyncio.to_thread(ctx.store_op, "read", str(dirs[big_n]), "--rebuild")
        read, built = both["read"], both["rebuild"]
        f6.values.append(float(built["events_per_s"]))
        f6.base.append(float(read["events_per_s"]))
        f6.detail.append({"rebuild": built, "read": read})

    f7 = report.add(
        Figure(
            "7",
            f"create p50 with {big_events:,} events in the store, 1 client",
            "ms",
            base_name=f"with {small_events:,} events",
            target=("<=", 1.2),
        )
    )
    f9 = report.add(
        Figure(
            "9",
            f"server RSS with {big_events:,} events (projected at start, then loaded)",
            "MB",
            target=("<=", 200.0),
            on="value",
        )
    )
    f9g = report.add(
        Figure(
            "9g",
            "server RSS, long history vs short",
            "MB",
            base_name=f"RSS with {small_events:,} events",
            target=("<=", 1.2),
            note="not growing with history: RSS with the long log over RSS with the short one",
        )
    )
    f9c = report.add(
        Figure(
            "9c",
            f"server catch-up from empty views, {big_events:,} events",
            "events/s",
            base_name="views rebuild (figure 6)",
            note="the embedded projector projects the whole log at start",
        )
    )
    people = await asyncio.gather(
        *(
            asyncio.to_thread(
                cli_user,
                service_env(data_dir=str(d)),
                ctx.tmp,
                "Amina Qureshi",
                "UN DPO",
                secretariat=True,
            )
            for d in dirs.values()
        )
    )
    secretaries = dict(zip(dirs, people, strict=True))
    servers: dict[int, Server] = {}
    casts: dict[int, Cast] = {}
    apis: dict[int, Api] = {}
    caught: dict[int, tuple[float, int]] = {}

    async def up(n: int) -> None:
        for name in VIEW_FILES:
            (dirs[n] / name).unlink(missing_ok=True)
        servers[n] = await ctx.start(prepmeet_server(f"prepmeet-history-{n}", dirs[n], ctx.tmp))
        apis[n] = Api(servers[n].base_url)
        seconds = await apis[n].caught_up()
        caught[n] = (seconds, servers[n].rss())
        if n not in casts:
            casts[n] = await Cast.create(apis[n], secretaries[n], 1)
        casts[n].api = apis[n]

    async def down(n: int) -> None:
        await apis[n].close()
        await ctx.stop(servers.pop(n))

    measured: dict[tuple[int, int], tuple[LoadResult, int]] = {}
    try:
        for rep, n in run_order(plan.reps, (small_n, big_n), plan.restart_per_rep):
            ctx.say(f"history of {seeded[n]['events']:,} events, repetition {rep + 1}/{plan.reps}")
            if n not in servers:
                await up(n)
                if n == big_n:
                    f9c.values.append(big_events / max(caught[n][0], 1e-9))
            cast = casts[n]
            meeting = await cast.meeting(f"History {rep + 1}")
            async with ctx.profiled(f"7-{n}", servers[n], rep):
                result = await ctx.load(
                    servers[n].base_url,
                    scenarios.create(meeting, cast.rapporteurs),
                    concurrency=1,
                    count=plan.history_requests,
                    warmup=0.0,
                )
            measured[rep, n] = (result, servers[n].rss())
            if plan.restart_per_rep or rep == plan.reps - 1:
                await down(n)
    finally:
        for n in list(servers):
            await down(n)
    f9c.base = list(f6.values[: len(f9c.values)])
    for rep in range(plan.reps):
        big, small = measured[rep, big_n], measured[rep, small_n]
        f7.values.append(ms(big[0].p(50)))
        f7.base.append(ms(small[0].p(50)))
        f7.detail.append(
            {
                str(n): {
                    "create": measured[rep, n][0].summary(),
                    "rss_after_load_mb": round(mb(measured[rep, n][1]), 1),
                }
                for n in (small_n, big_n)
            }
        )
        f9.values.append(mb(big[1]))
        f9g.values.append(mb(big[1]))
        f9g.base.append(mb(small[1]))
    report.extra["history_catch_up"] = {
        str(n): {"seconds": round(t, 3), "rss_caught_up_mb": round(mb(r), 1)}
        for n, (t, r) in caught.items()
    }


def run_order(reps: int, keys: tuple[int, ...], interleave: bool) -> list[tuple[int, int]]:
    """(repetition, key) pairs: key by key inside each repetition, or (when servers are not
    restarted for each repetition) every repetition of one key, then the next key."""
    if interleave:
        return [(rep, k) for rep in range(reps) for k in keys]
    return [(rep, k) for k in keys for rep in range(reps)]


# --- 4. PostgreSQL -----------------------------------------------------------------------------


async def postgres_phase(ctx: Context, admin_url: str) -> None:
    """Figure 10: 2 API workers + 1 projector process vs 1 worker, create/s."""
    plan, report = ctx.plan, ctx.report
    with own_database(admin_url) as target:
        where = f"database {target.dbname}" + (f", schema {target.schema}" if target.schema else "")
        ctx.say(f"PostgreSQL: {where} (dropped at the end)")
        data = ctx.tmp / "pg"
        env = service_env(data_dir=str(data), database_url=target.url)
        secretariat = await asyncio.to_thread(
            cli_user, env, ctx.tmp, "Amina Qureshi", "UN DPO", secretariat=True
        )
        f10 = report.add(
            Figure(
                "10",
                f"PostgreSQL create/s, 2 workers + projector process, {plan.clients} clients",
                "req/s",
                base_name="1 worker (embedded projector)",
                target=(">=", 1.5),
            )
        )
        f10s = report.add(
            Figure(
                "10s",
                f"PostgreSQL create/s, 1 worker, vs raw save() ({plan.clients} threads)",
                "req/s",
                base_name="save() calls/s",
            )
        )
        cast: Cast | None = None
        servers: dict[int, Server] = {}
        apis: dict[int, Api] = {}

        async def up(workers: int) -> Api:
            nonlocal cast
            server = await ctx.start(
                prepmeet_server(
                    f"prepmeet-pg-{workers}",
                    data,
                    ctx.tmp,
                    workers=workers,
                    database_url=target.url,
                )
            )
            servers[workers] = server
            apis[workers] = Api(server.base_url)
            if cast is None:
                cast = await Cast.create(apis[workers], secretariat, plan.clients)
            await apis[workers].caught_up()
            return apis[workers]

        async def down(workers: int) -> None:
            await apis.pop(workers).close()
            await ctx.stop(servers.pop(workers))

        results: dict[tuple[int, int], LoadResult] = {}
        try:
            for rep, workers in run_order(plan.reps, (1, 2), plan.restart_per_rep):
                ctx.say(f"PostgreSQL, {workers} worker(s), repetition {rep + 1}/{plan.reps}")
                if workers not in servers:
                    await up(workers)
                assert cast is not None
                cast.api = apis[workers]
                meeting = await cast.meeting(f"PostgreSQL {rep + 1}, {workers} worker(s)")
                async with ctx.profiled(f"10-{workers}", servers[workers], rep):
                    results[rep, workers] = await ctx.load(
                        servers[workers].base_url, scenarios.create(meeting, cast.rapporteurs)
                    )
                if plan.restart_per_rep or rep == plan.reps - 1:
                    await down(workers)
                if workers == (2 if plan.restart_per_rep else 1):
                    # the store ceiling of this repetition, the servers idle or stopped
                    f10s.detail.append(
                        await asyncio.to_thread(
                            ctx.store_op,
                            "save",
                            "--url",
                            target.url,
                            "--threads",
                            str(plan.clients),
                            "--seconds",
                            str(plan.store_seconds),
                            env=env,
                        )
                    )
        finally:
            for workers in list(servers):
                await down(workers)
    for rep in range(plan.reps):
        one, two = results[rep, 1], results[rep, 2]
        f10.values.append(two.throughput)
        f10.base.append(one.throughput)
        f10.detail.append({"2": two.summary(), "1": one.summary()})
        f10s.values.append(one.throughput)
        f10s.base.append(float(f10s.detail[rep]["saves_per_s"]))
        ctx.say(
            f"  repetition {rep + 1}: 1 worker {one.throughput:.0f}/s, 2 workers "
            f"{two.throughput:.0f}/s, save() {f10s.base[-1]:.0f}/s"
        )
