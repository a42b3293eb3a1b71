"""The bad-input corpus: every write operation against every kind of input it must refuse.

Every case must answer a problem response (``application/problem+json`` with type, title,
status and detail) with the 4xx the contract gives it, never a 5xx, and record nothing.

The operations are the write operations of the OpenAPI document (a test fails when one has
no row in ``ENDPOINTS``), and the field cases are derived from each operation's body schema
(types, ``minLength``, ``maxLength``, patterns, enums, item counts), so a new operation,
field or limit is covered as soon as it is declared. Each case spoils one thing of a request
that succeeds (``test_each_endpoint_accepts_the_request_its_cases_spoil``).
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from api.main import create_app
from domain import rules
from domain.application import SYSTEM, PreparatoryMeetings
from tests.e2e.conftest import LIMIT, UNKNOWN_ID, World, assert_problem, settings_for
from tests.e2e.test_api_endpoints import WRITES, valid_body

# The writes that take no body (WRITES of test_api_endpoints holds those that take one).
NO_BODY = {
    "issue token": ("POST", "/api/v1/users/{spare}/tokens", "secretariat"),
    "revoke tokens": ("DELETE", "/api/v1/users/{spare}/tokens", "secretariat"),
    "open": ("POST", "/api/v1/meetings/{scheduled}/open", "secretariat"),
    "close": ("POST", "/api/v1/meetings/{meeting}/close", "secretariat"),
    "forward": ("POST", "/api/v1/meetings/{meeting}/forward", "secretariat"),
    "submit": ("POST", "/api/v1/proposals/{draft}/submit", "proposer"),
}
ROWS = {**WRITES, **NO_BODY}
WRITE_METHODS = ("post", "put", "patch", "delete")

UNPROCESSABLE = frozenset({422})
NOT_FOUND = frozenset({404})
TOO_LARGE = frozenset({413})
PRECONDITION = frozenset({412})
# Body fields that name another object: once the schema passes, the id is looked up. An
# unknown user to enrol or proposal to merge into is 422; an order that is not every
# approved proposal of the theme once is 409.
ID_FIELDS = {
    "user_id": UNPROCESSABLE,
    "into": UNPROCESSABLE,
    "proposal_ids": frozenset({409, 422}),
}
# A path parameter's object of another kind, which is not found either.
OTHER_KIND = {"user_id": "meeting", "meeting_id": "draft", "proposal_id": "meeting"}
KEY_MAX = 64  # rules.KEY_PATTERN: 1 to 64 characters
DEPTH = 10_000


@dataclass(frozen=True)
class Raw:
    """Bytes sent as they are, in place of a JSON value."""

    text: bytes


@dataclass(frozen=True)
class Ref:
    """An id of the seeded world, by its name there."""

    name: str


@dataclass(frozen=True)
class Repeat:
    """The field's first valid item (or ``default``), ``count`` times."""

    count: int
    default: Any


@dataclass(frozen=True)
class Case:
    """One bad request: the valid request with one thing spoilt.

    The body is ``raw`` as it is, or ``stream`` bytes sent without Content-Length, or else
    the valid body with the field at ``at`` set to ``value`` (the valid body itself when
    ``at`` is None). ``segment`` replaces a segment of the path.
    """

    name: str
    expected: frozenset[int]
    raw: bytes | None = None
    stream: int = 0
    at: tuple[str | int, ...] | None = None
    value: Any = None
    headers: tuple[tuple[str, bytes], ...] = ()
    segment: tuple[int, str] | None = None


@dataclass(frozen=True)
class Field:
    path: tuple[str | int, ...]
    schema: dict[str, Any]
    nullable: bool


@dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    template: str  # the path, with names of the seeded world's ids
    actor: str
    operation: str  # "METHOD /path" of the OpenAPI document
    params: dict[int, str]  # path segment index: parameter name
    body: str  # "none", "optional" or "required"
    schema: dict[str, Any] | None
    if_match: bool
    idempotency_key: bool

    @property
    def fields(self) -> list[Field]:
        return list(fields_of(self.schema)) if self.schema is not None else []

    @property
    def first_text(self) -> tuple[str | int, ...]:
        """Where to put a bad string value: the first string field (or an unknown one)."""
        for f in self.fields:
            if f.schema.get("type") == "string":
                return f.path
        return ("x",)


# --- the operations, from the OpenAPI document --------------------------------------


def openapi_document() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as directory:
        app = create_app(settings_for(Path(directory)))
        try:
            return app.openapi()
        finally:
            app.state.container.close()


def write_operations(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        f"{method.upper()} {path}": operation
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if method in WRITE_METHODS
    }


def matches(template: str, path: str) -> bool:
    ours, theirs = template.split("/"), path.split("/")
    return len(ours) == len(theirs) and all(
        o == t or t.startswith("{") for o, t in zip(ours, theirs, strict=True)
    )


def operation_of(method: str, template: str, operations: dict[str, Any]) -> str:
    found = [
        key
        for key in operations
        if key.split(" ")[0] == method and matches(template, key.split(" ", 1)[1])
    ]
    assert len(found) == 1, f"{method} {template} matches {found}"
    return found[0]


def inlined(schema: Any, document: dict[str, Any]) -> Any:
    """The schema with every ``$ref`` replaced by what it names."""
    if isinstance(schema, dict):
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[1]
            return inlined(document["components"]["schemas"][name], document)
        return {k: inlined(v, document) for k, v in schema.items()}
    if isinstance(schema, list):
        return [inlined(v, document) for v in schema]
    return schema


def unwrap(schema: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The schema with ``null`` taken out of it, and whether null was allowed."""
    if "anyOf" in schema:
        kinds = [s for s in schema["anyOf"] if s.get("type") != "null"]
        assert len(kinds) == 1, schema
        return kinds[0], len(kinds) < len(schema["anyOf"])
    return schema, False


def fields_of(schema: dict[str, Any], path: tuple[str | int, ...] = ()) -> Iterator[Field]:
    for name, prop in schema.get("properties", {}).items():
        sub, nullable = unwrap(prop)
        yield Field((*path, name), sub, nullable)
        if sub.get("type") == "array":
            items, _ = unwrap(sub["items"])
            yield Field((*path, name, 0), items, False)
            if items.get("type") == "object":
                yield from fields_of(items, (*path, name, 0))


def endpoint(name: str, document: dict[str, Any]) -> Endpoint:
    method, template, actor = ROWS[name]
    operations = write_operations(document)
    key = operation_of(method, template, operations)
    operation = operations[key]
    segments = key.split(" ", 1)[1].split("/")
    params = {i: s.strip("{}") for i, s in enumerate(segments) if s.startswith("{")}
    headers = {p["name"].lower() for p in operation.get("parameters", []) if p["in"] == "header"}
    request_body = operation.get("requestBody")
    schema = None
    body = "none"
    if request_body is not None:
        body = "required" if request_body.get("required") else "optional"
        declared = request_body["content"]["application/json"]["schema"]
        schema, _ = unwrap(inlined(declared, document))
    return Endpoint(
        name=name,
        method=method,
        template=template,
        actor=actor,
        operation=key,
        params=params,
        body=body,
        schema=schema,
        if_match="if-match" in headers,
        idempotency_key="idempotency-key" in headers,
    )


OPENAPI = openapi_document()
ENDPOINTS = {name: endpoint(name, OPENAPI) for name in sorted(ROWS)}


# --- the corpus ---------------------------------------------------------------------


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def sized(size: int) -> bytes:
    """A JSON object of exactly ``size`` bytes."""
    head, tail = b'{"x": "', b'"}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


def unknown_field() -> dict[str, Any]:
    return {"at": ("colour",), "value": "blue"}


IF_MATCH_GARBAGE = [
    ("word", b"garbage"),
    ("empty", b""),
    ("letters", b'"abc"'),
    ("negative", b'"-1"'),
    ("19 digits", b'"9999999999999999999"'),
    ("not text", b'"\xff\xfe"'),
    ("NUL", b'"1\x001"'),
]
PATH_IDS = [
    ("not a UUID", "not-a-uuid"),
    ("bad hex", "00000000-0000-4000-8000-00000000000g"),
    ("unknown", UNKNOWN_ID),
    ("NUL", "%00"),
    ("not UTF-8", "%FF%FE"),
]
UNKNOWN_THEMES = [("unknown theme", "no-such-theme"), ("not a key", "Not A Key")]
BLANKS = [("empty", ""), ("blank", " \t\n ")]
CONTROLS = [
    ("NUL", "a\x00b"),
    ("ESC", "a\x1b[2Jb"),
    ("DEL", "a\x7fb"),
    ("C1 control", "a\x9bb"),
    ("lone surrogate", "a\ud800b"),
]
WRONG_TYPES = [
    ("10**400", 10**400),
    ("a boolean", True),
    ("an array", ["x"]),
    ("an object", {"x": "y"}),
]
BAD_IDS = [
    ("not a UUID", "not-a-uuid"),
    ("bad hex", "00000000-0000-4000-8000-00000000000g"),
    ("unknown id", UNKNOWN_ID),
    ("a meeting's id", Ref("meeting")),
]


def generic_cases(ep: Endpoint) -> Iterator[Case]:
    """What every write gets, whatever its body."""
    u = UNPROCESSABLE
    first = ep.first_text
    for i, raw in enumerate([b"{", b'{"title": }', b'{"a": 1} x', b"{'a': 1}"]):
        yield Case(f"malformed JSON {i + 1}", u, raw=raw)
    yield Case("not UTF-8 at all", u, raw=b"\xff\xfe{}")
    for label, raw in [
        ("invalid UTF-8 byte", b'"a\xffb"'),
        ("overlong UTF-8", b'"a\xc0\xafb"'),
        ("UTF-8 of a surrogate", b'"a\xed\xa0\x80b"'),
        ("truncated UTF-8", b'"a\xe2\x82"'),
        ("raw NUL in a string", b'"a\x00b"'),
        ("10**5000", b"1" + b"0" * 5000),
        ("1e400", b"1e400"),
        ("NaN", b"NaN"),
        (f"array nested {DEPTH} deep", nested(DEPTH)),
        ("array nested 900 deep", nested(900)),
    ]:
        yield Case(f"field: {label}", u, at=first, value=Raw(raw))
    for label, raw in [
        ("an array", b"[]"),
        ("a string", b'"text"'),
        ("an empty string", b'""'),
        ("a blank string", b'"   "'),
        ("true", b"true"),
        ("10**400", str(10**400).encode()),
        ("10**5000", b"1" + b"0" * 5000),
        ("-1e400", b"-1e400"),
        (f"array nested {DEPTH} deep", nested(DEPTH)),
        (f"object nested {DEPTH} deep", b'{"a":' * DEPTH + b"1" + b"}" * DEPTH),
    ]:
        yield Case(f"body: {label}", u, raw=raw)
    if ep.body == "required":
        yield Case("body: null", u, raw=b"null")
        yield Case("body: none", u, raw=b"")
        yield Case("body: blank", u, raw=b" \n\t ")
    yield Case("unknown field", u, **unknown_field())
    yield Case("256 KiB + 1 with Content-Length", TOO_LARGE, raw=sized(LIMIT + 1))
    yield Case("256 KiB + 1 streamed, chunked", TOO_LARGE, stream=LIMIT + 1)
    # If-Match and Idempotency-Key on the valid request where the operation reads them;
    # elsewhere they are ignored, so they go with a body that is refused anyway
    for label, garbage in IF_MATCH_GARBAGE:
        name, headers = f"If-Match {label}", (("If-Match", garbage),)
        if ep.if_match:
            yield Case(name, PRECONDITION, headers=headers)
        else:
            yield Case(name, u, headers=headers, **unknown_field())
    name, headers = "Idempotency-Key of 256", (("Idempotency-Key", b"k" * 256),)
    if ep.idempotency_key:
        yield Case(name, u, headers=headers)
    else:
        yield Case(name, u, headers=headers, **unknown_field())


def path_cases(ep: Endpoint) -> Iterator[Case]:
    for index, param in ep.params.items():
        values = list(UNKNOWN_THEMES if param == "theme" else PATH_IDS)
        if param in OTHER_KIND:
            values.append((f"a {OTHER_KIND[param]}'s id", f"{{{OTHER_KIND[param]}}}"))
        for label, value in values:
            yield Case(f"path {param}: {label}", NOT_FOUND, segment=(index, value))


def string_cases(f: Field, expected: frozenset[int]) -> Iterator[tuple[str, Any, frozenset[int]]]:
    s = f.schema
    constrained = s.get("minLength", 0) >= 1 or "pattern" in s or "format" in s or "enum" in s
    if constrained:
        for label, value in BLANKS:
            yield label, value, expected
    limit = s.get("maxLength") or (KEY_MAX if s.get("pattern") == rules.KEY_PATTERN.pattern else 0)
    if limit:
        yield f"{limit + 1} characters", "x" * (limit + 1), UNPROCESSABLE
    for label, value in CONTROLS:
        yield label, value, expected
    if "pattern" in s:
        yield "not a key", "Not A Key", UNPROCESSABLE
    if "enum" in s:
        yield "not one of the values", "president", UNPROCESSABLE
    if s.get("format") == "date":
        yield "no such day", "2025-02-30", UNPROCESSABLE
        yield "not ISO 8601", "15 April 2025", UNPROCESSABLE


def field_cases(ep: Endpoint) -> Iterator[Case]:
    for f in ep.fields:
        s, where = f.schema, ".".join(str(p) for p in f.path)
        root = str(f.path[0])
        kind = s.get("type")
        values: list[tuple[str, Any, frozenset[int]]] = []
        if kind == "string":
            expected = ID_FIELDS.get(root, UNPROCESSABLE)
            values += list(string_cases(f, expected))
            if root in ID_FIELDS:
                values += [(label, value, expected) for label, value in BAD_IDS]
            values += [(label, value, UNPROCESSABLE) for label, value in WRONG_TYPES]
        elif kind == "boolean":
            values += [("a string", "true", UNPROCESSABLE), ("1", 1, UNPROCESSABLE)]
            values += [("10**400", 10**400, UNPROCESSABLE)]
        elif kind == "array":
            values += [(label, v, UNPROCESSABLE) for label, v in WRONG_TYPES if label != "an array"]
            if s.get("minItems", 0) >= 1:
                values.append(("no items", [], UNPROCESSABLE))
            if "maxItems" in s:
                default = "technology" if root == "themes" else UNKNOWN_ID
                count = s["maxItems"] + 1
                values.append((f"{count} items", Repeat(count, default), UNPROCESSABLE))
        elif kind == "object":
            values += [("a string", "x", UNPROCESSABLE), ("a number", 7, UNPROCESSABLE)]
            values += [("an array", [], UNPROCESSABLE)]
            yield Case(f"{where}: unknown field", UNPROCESSABLE, at=(*f.path, "colour"), value=1)
        if not f.nullable:
            values.append(("null", None, UNPROCESSABLE))
        for label, value, expected in values:
            yield Case(f"{where}: {label}", expected, at=f.path, value=value)


def corpus(ep: Endpoint) -> list[Case]:
    cases = [*generic_cases(ep), *path_cases(ep), *field_cases(ep)]
    names = Counter(c.name for c in cases)
    assert max(names.values()) == 1, [n for n, k in names.items() if k > 1]
    return cases


CORPUS = {name: corpus(ep) for name, ep in ENDPOINTS.items()}


# --- sending a case -----------------------------------------------------------------


def encode(value: Any) -> bytes:
    """JSON, with ``Raw`` values spliced in as they are (and non-ASCII escaped)."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, dict):
        return b"{" + b",".join(encode(k) + b":" + encode(v) for k, v in value.items()) + b"}"
    if isinstance(value, list):
        return b"[" + b",".join(encode(v) for v in value) + b"]"
    return json.dumps(value).encode()


def resolve(value: Any, world: World, current: Any) -> Any:
    if isinstance(value, Ref):
        return getattr(world, value.name)
    if isinstance(value, Repeat):
        item = current[0] if isinstance(current, list) and current else value.default
        return [item] * value.count
    return value


def get_at(body: Any, path: tuple[str | int, ...]) -> Any:
    for step in path:
        if isinstance(step, int):
            body = body[0] if isinstance(body, list) and body else None
        else:
            body = body.get(step) if isinstance(body, dict) else None
    return body


def set_at(body: Any, path: tuple[str | int, ...], value: Any) -> Any:
    if not path:
        return value
    step, rest = path[0], path[1:]
    if isinstance(step, int):
        items = list(body) if isinstance(body, list) else []
        first = set_at(items[0] if items else None, rest, value)
        return [first, *items[1:]]
    out = dict(body) if isinstance(body, dict) else {}
    out[step] = set_at(out.get(step), rest, value)
    return out


def base_body(ep: Endpoint, world: World) -> Any:
    return None if ep.body == "none" else valid_body(ep.name, world)


async def chunks(size: int) -> AsyncIterator[bytes]:
    body = sized(size)
    for start in range(0, len(body), 8192):
        yield body[start : start + 8192]


def named(world: World, template: str) -> str:
    """The template with the world's ids (a person's name stands for their id) filled in."""
    ids = {k: getattr(v, "id", v) for k, v in vars(world).items()}
    return template.format(**ids)


def request_of(ep: Endpoint, case: Case, world: World) -> dict[str, Any]:
    path = named(world, ep.template)
    if case.segment is not None:
        index, value = case.segment
        segments = path.split("/")
        segments[index] = named(world, value)
        path = "/".join(segments)
    content: bytes | AsyncIterator[bytes] | None
    if case.raw is not None:
        content = case.raw
    elif case.stream:
        content = chunks(case.stream)
    else:
        body = base_body(ep, world)
        if case.at is not None:
            value = resolve(case.value, world, get_at(body, case.at))
            body = set_at(body, case.at, value)
        content = None if body is None else encode(body)
    headers: dict[str, str | bytes] = dict(world.person(ep.actor).auth)
    if content is not None:
        headers["Content-Type"] = "application/json"
    headers.update(dict(case.headers))
    return {"method": ep.method, "url": path, "content": content, "headers": headers}


# --- the tests ----------------------------------------------------------------------


@pytest.mark.readonly
async def test_the_corpus_covers_every_write_operation(app: FastAPI) -> None:
    served = write_operations(app.openapi())
    covered = {ep.operation: name for name, ep in ENDPOINTS.items()}
    assert len(covered) == len(ENDPOINTS), "two rows name the same operation"
    assert set(served) == set(covered), (
        f"write operations without a row in ENDPOINTS: {sorted(set(served) - set(covered))}"
    )
    declared = {str(f.path[0]) for ep in ENDPOINTS.values() for f in ep.fields}
    assert set(ID_FIELDS) <= declared, f"ID_FIELDS names no field: {set(ID_FIELDS) - declared}"
    sizes = {name: len(cases) for name, cases in CORPUS.items()}
    width = max(map(len, sizes))
    op_width = max(len(ep.operation) for ep in ENDPOINTS.values())
    print(f"\nbad-input corpus: {len(sizes)} write operations")
    for name, count in sizes.items():
        print(f"  {name:<{width}}  {ENDPOINTS[name].operation:<{op_width}}  {count:>4} cases")
    print(f"  total: {sum(sizes.values())} cases")


@pytest.mark.parametrize("name", sorted(ENDPOINTS))
async def test_each_endpoint_accepts_the_request_its_cases_spoil(
    client: httpx.AsyncClient, core: PreparatoryMeetings, world: World, name: str
) -> None:
    ep = ENDPOINTS[name]
    if name == "forward":
        core.close_meeting(SYSTEM, world.meeting)
    request = request_of(ep, Case("valid", frozenset()), world)
    before = core.last_position()
    response = await client.request(**request)
    assert response.status_code in (200, 201, 204), response.text[:1000]
    assert core.last_position() > before


@pytest.mark.readonly
@pytest.mark.parametrize(
    ("name", "case"),
    [
        pytest.param(name, case, id=f"{name} | {case.name}")
        for name, cases in CORPUS.items()
        for case in cases
    ],
)
async def test_bad_input_is_refused_with_a_problem_and_records_nothing(
    client: httpx.AsyncClient, core: PreparatoryMeetings, world: World, name: str, case: Case
) -> None:
    ep = ENDPOINTS[name]
    before = core.last_position()
    response = await client.request(**request_of(ep, case, world))
    status = response.status_code
    assert status in case.expected, (
        f"{ep.method} {response.request.url.path}: expected {sorted(case.expected)}, "
        f"got {status}: {response.text[:500]}"
    )
    assert_problem(response, status)
    assert core.last_position() == before, "a refused request recorded an event"
