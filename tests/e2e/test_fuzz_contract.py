"""The OpenAPI contract, fuzzed: schemathesis over every operation of ``/openapi.json``.

Schemathesis is used as a library against the ASGI app, offline: for every operation and
every role of the demo meeting (secretariat, chair, rapporteur, observer, ministerial) it
generates requests, valid and invalid, sends them with that role's token, and runs its
checks on each answer: no server error, a documented status code, a documented content
type and headers, a body that matches the documented schema, invalid data refused, and
authentication enforced (the request without a token, and with a wrong one, is refused).

Path ids are sometimes real ids of the demo meeting (its meeting, proposals, users, themes,
forwarded version and ministerial), so that the fuzzer reaches past 404 into the routes.

Two profiles, chosen by ``PREPMEET_FUZZ``:

- ``quick`` (the default): a few examples per operation and role, well under two minutes;
- ``deep``: at least 100 examples per operation and role. Run it with
  ``make fuzz-deep``.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.python import asgi as schemathesis_asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.demo import load_demo
from api.main import create_app
from api.settings import Settings
from domain.application import SYSTEM

PROFILES = {
    # examples per operation, per role and per generation mode
    "quick": {"positive": 4, "negative": 3},
    "deep": {"positive": 100, "negative": 50},
}
PROFILE = os.environ.get("PREPMEET_FUZZ", "quick").strip().lower() or "quick"
ROLES = ["secretariat", "chair-tech", "rapporteur-tech", "observer", "berlin"]
# Every check of schemathesis that judges one response, but ``positive_data_acceptance``: the
# contract refuses some requests that JSON Schema cannot tell from valid ones (an end before
# the start, control characters, a user id that names nobody, an ``If-Match`` of another
# version, an ``after`` past the log) with 412 and 422. (The stateful checks need links.)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    ignored_auth,
]
TIMEOUT = 10.0
STREAM_TIMEOUT = 1.0  # an event stream with nothing new to send stays open: cut it short
NOTHING_TO_NEGATE: set[str] = set()  # operations whose every input is valid, found once


class OwnLifespan:
    """The app for schemathesis, whose lifespan the test keeps: schemathesis ends the lifespan
    of an ASGI app after every test (which would close the store under the next test)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return


@dataclass
class Demo:
    app: FastAPI
    tokens: dict[str, str]
    ids: dict[str, list[str]]


@dataclass
class Tally:
    cases: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    reached: set[str] = field(default_factory=set)  # operations answered with a 2xx
    failures: dict[str, str] = field(default_factory=dict)
    unsatisfiable: int = 0


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    data_dir: Path = tmp_path_factory.mktemp("fuzz") / "data"
    settings = Settings(
        data_dir=data_dir, database_url=None, rate_limit_per_token=0, rate_limit_per_address=0
    )
    app = create_app(settings)
    core = app.state.container.app
    loaded = load_demo(core)
    meeting = loaded["meeting_id"]
    # a second meeting, closed and forwarded, so that versions and changes have something
    forwarded = core.schedule_meeting(
        SYSTEM,
        "Fuzzed preparatory meeting",
        "CIPS, NUST, Islamabad",
        "2025-04-15",
        "2025-04-16",
        ["Pakistan"],
        "berlin-2025",
        [{"key": "technology", "title": "Use of technology in peacekeeping"}],
    ).state["id"]
    core.open_meeting(SYSTEM, forwarded)
    core.close_meeting(SYSTEM, forwarded)
    app.state.container.forward_meeting(SYSTEM, forwarded)
    # users whose tokens the fuzzer may revoke without locking the roles out
    spare = [core.create_user(SYSTEM, f"Spare {i}", "Fiji").state["id"] for i in range(3)]
    proposals = [str(p.proposal_id) for p in core.proposal_ids(meeting)]
    ids = {
        "meeting_id": [meeting, forwarded],
        "proposal_id": proposals,
        "user_id": spare,
        "theme": ["technology", "safety-security", "regional-cooperation"],
        "version": ["1"],
        "ministerial": ["berlin-2025"],
    }
    try:
        yield Demo(app, loaded["tokens"], ids)
    finally:
        schemathesis_asgi.shutdown_lifespans()
        app.state.container.close()


def strategy(operation: Any, mode: GenerationMode, demo: Demo, token: str) -> Any:
    """Cases of this operation; half of them with real ids of the demo in the path."""
    headers = {"Authorization": f"Bearer {token}"}
    generated = operation.as_strategy(mode, headers=headers)
    names = [p.name for p in operation.path_parameters]
    if not names or not all(n in demo.ids for n in names):
        return generated
    real = st.fixed_dictionaries({n: st.sampled_from(demo.ids[n]) for n in names})
    return st.one_of(
        real.flatmap(
            lambda params: operation.as_strategy(mode, headers=headers, path_parameters=params)
        ),
        generated,
    )


PLAIN_KEYS = {"type", "title", "description"}


def plain_string(schema: dict[str, Any]) -> bool:
    """A string schema that every string matches (``str | None`` too: a header is no null)."""
    if "anyOf" in schema:
        others = set(schema) - PLAIN_KEYS - {"anyOf"}
        return not others and all(
            s.get("type") == "null" or plain_string(s) for s in schema["anyOf"]
        )
    return schema.get("type") == "string" and not set(schema) - PLAIN_KEYS


def negatable(operation: Any) -> bool:
    """Whether any input of the operation can be invalid (else negative cases cannot exist)."""
    if len(operation.body):
        return True
    return any(
        not plain_string(p.definition.get("schema", {}))
        for p in operation.iter_parameters()
        if p.name.lower() != "authorization"
    )


def fuzz(
    operation: Any, mode: GenerationMode, examples: int, demo: Demo, role: str, tally: Tally
) -> None:
    token = demo.tokens[role]
    label = f"{operation.label} as {role} ({mode.value})"
    if mode is GenerationMode.NEGATIVE and (
        operation.label in NOTHING_TO_NEGATE or not negatable(operation)
    ):
        tally.unsatisfiable += 1
        return
    timeout = STREAM_TIMEOUT if operation.path.endswith("/stream") else TIMEOUT

    @hypothesis.settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    @given(case=strategy(operation, mode, demo, token))
    def run(case: Any) -> None:
        tally.cases += 1
        headers = {"Authorization": f"Bearer {token}"}
        response = case.call(headers=headers, timeout=timeout)
        tally.statuses[response.status_code] += 1
        if 200 <= response.status_code < 300:
            tally.reached.add(operation.label)
        case.validate_response(response, checks=CHECKS, headers=headers)

    try:
        run()
    except FailureGroup as e:
        tally.failures[label] = str(e)[:3000]
    except hypothesis.errors.Unsatisfiable:
        # nothing to make invalid: an operation without parameters or body
        assert mode is GenerationMode.NEGATIVE, label
        NOTHING_TO_NEGATE.add(operation.label)
        tally.unsatisfiable += 1


@pytest.mark.parametrize("role", ROLES)
def test_every_operation_keeps_its_contract_under_fuzzing(demo: Demo, role: str) -> None:
    profile = PROFILES.get(PROFILE)
    assert profile is not None, f"PREPMEET_FUZZ must be one of {', '.join(PROFILES)}"
    schema = schemathesis.openapi.from_asgi("/openapi.json", OwnLifespan(demo.app))
    tally = Tally()
    operations = 0
    started = time.perf_counter()
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode, examples in (
            (GenerationMode.POSITIVE, profile["positive"]),
            (GenerationMode.NEGATIVE, profile["negative"]),
        ):
            fuzz(operation, mode, examples, demo, role, tally)
    elapsed = time.perf_counter() - started
    print(
        f"\n[fuzz {PROFILE} as {role}] operations: {operations}, cases: {tally.cases}, "
        f"failures: {len(tally.failures)}, operations answered 2xx: {len(tally.reached)}, "
        f"statuses: {dict(sorted(tally.statuses.items()))}, {elapsed:.1f} s"
    )
    for label, report in tally.failures.items():
        print(f"--- {label}\n{report}")
    assert operations >= 30
    assert tally.cases >= operations * 2
    assert not tally.failures, sorted(tally.failures)
