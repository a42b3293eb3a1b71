"""The compiled recommendations over HTTP, in every format, read back with real parsers.

Each download is parsed as a reader would parse it (json; html.parser; markdown-it-py;
pypdf; python-docx; csv) and must hold every recommendation's number, title and wording in
the JSON's order. The headers (ETag, Repr-Digest, Content-Disposition), the seal, byte
identity (re-rendered, not served from the render cache), ``as_of``, content negotiation
and conditional requests are checked; then a corpus of hostile text written through the API
must come out as text in every format, with no network connection opened while rendering.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import itertools
import json
import re
import socket
import unicodedata
import zipfile
from collections.abc import AsyncIterator, Generator, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import docx
import httpx
import pytest
from fastapi import FastAPI
from markdown_it import MarkdownIt
from pypdf import PdfReader

from api.container import RenderCache
from api.demo import load_demo
from api.main import create_app
from domain.application import SYSTEM, PreparatoryMeetings
from tests.e2e.conftest import assert_problem, client_for, settings_for

Doc = dict[str, Any]
Rec = tuple[str, str, str]

FORMATS = ("json", "md", "html", "pdf", "docx", "csv")
MEDIA = {
    "json": "application/json",
    "md": "text/markdown",
    "html": "text/html",
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "csv": "text/csv",
}
CSV_HEADER = [
    "theme_number", "theme", "number", "proposal_id", "title", "text", "proposer",
    "delegation", "endorsements", "approved_by", "approved_at", "merged_from",
]  # fmt: skip
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
HEX64 = re.compile(r"^[0-9a-f]{64}$")
NO_LIMITS = {"rate_limit_per_token": 0, "rate_limit_per_address": 0}


# --- reading a download back ------------------------------------------------------------


def norm(text: str) -> str:
    """White space made single spaces: how every layout may reflow a text."""
    return " ".join(text.split())


def cleaned(text: str) -> str:
    """User text as documents show it: line ends made ``\\n``, outer white space dropped."""
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


def recommendations(doc: Doc) -> list[Rec]:
    """(number, title, wording) of every recommendation of a JSON document, in order."""
    return [
        (r["number"], r["title"], r["text"])
        for theme in doc["themes"]
        for r in theme["recommendations"]
    ]


def shown(recs: list[Rec]) -> list[tuple[str, str]]:
    """Each recommendation as a heading and its wording, white space normalised."""
    return [(norm(f"{number} {title}"), norm(cleaned(text))) for number, title, text in recs]


class Page(HTMLParser):
    """The tags of an HTML page and the text of its blocks, in order."""

    BLOCKS = frozenset({"title", "h1", "h2", "h3", "h4", "h5", "p", "li", "dt", "dd", "th", "td"})

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.blocks: list[tuple[str, str]] = []
        self._tag: str | None = None
        self._text: list[str] = []
        self.feed(html)
        self.close()

    def _flush(self) -> None:
        if self._tag is not None:
            self.blocks.append((self._tag, "".join(self._text)))
        self._tag, self._text = None, []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag in self.BLOCKS:
            self._flush()
            self._tag = tag
        elif tag == "br":
            self._text.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == self._tag:
            self._flush()

    def handle_data(self, data: str) -> None:
        if self._tag is not None:
            self._text.append(data)

    def texts(self, tag: str) -> list[str]:
        return [norm(text) for t, text in self.blocks if t == tag]

    def headed(self, heading: str) -> list[tuple[str, str]]:
        """(heading, the paragraphs right after it, joined) for each ``heading`` block."""
        out: list[tuple[str, list[str]]] = []
        following = False
        for tag, text in self.blocks:
            if tag == heading:
                out.append((norm(text), []))
                following = True
            elif tag == "p" and following:
                out[-1][1].append(text)
            else:
                following = False
        return [(title, norm(" ".join(texts))) for title, texts in out]


def markdown_html(body: bytes) -> str:
    html: str = MarkdownIt("gfm-like").render(body.decode("utf-8"))
    return html


def pdf_text(body: bytes) -> str:
    """The text of every page, each page's footer (page number, total, seal) checked and cut."""
    pages = PdfReader(io.BytesIO(body)).pages
    footer = re.compile(r"^Page (\d+) of \nSHA-256 ([0-9a-f]{64})\n(\d+)\n")
    texts = []
    for number, page in enumerate(pages, start=1):
        text = page.extract_text()
        match = footer.match(text)
        assert match, text[:300]
        assert (int(match[1]), int(match[3])) == (number, len(pages))
        texts.append(text[match.end() :])
    return "\n".join(texts)


def docx_paragraphs(body: bytes) -> list[tuple[str, str]]:
    """(style name, text) of every paragraph of a Word document."""
    document = docx.Document(io.BytesIO(body))
    return [(p.style.name if p.style is not None else "", p.text) for p in document.paragraphs]


def csv_rows(body: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body.decode("utf-8"), newline="")))


def assert_in_order(haystack: str, needles: list[str]) -> None:
    at = 0
    for needle in needles:
        found = haystack.find(needle, at)
        assert found >= 0, f"missing, or out of order after {at}: {needle[:100]!r}"
        at = found + len(needle)


def assert_holds(fmt: str, body: bytes, recs: list[Rec], depth: int = 0) -> None:
    """The download holds exactly these recommendations (number, title, wording), in order.

    ``depth`` is 1 for a ministerial compilation, whose headings sit one level deeper.
    """
    expected = shown(recs)
    if fmt == "json":
        doc = json.loads(body)
        docs = doc["meetings"] if depth else [doc]
        assert [rec for d in docs for rec in recommendations(d)] == recs
    elif fmt in ("html", "md"):
        page = Page(body.decode("utf-8") if fmt == "html" else markdown_html(body))
        assert page.headed(f"h{3 + depth}") == expected
    elif fmt == "docx":
        styled = docx_paragraphs(body)
        found = [
            (norm(heading), norm(text))
            for (style, heading), (_, text) in itertools.pairwise(styled)
            if style == f"Heading {2 + depth}"
        ]
        assert found == expected
    elif fmt == "csv":
        rows = csv_rows(body)
        assert [(r["number"], r["title"], r["text"]) for r in rows] == [
            (number, csv_cell(norm(title)), csv_cell(cleaned(text))) for number, title, text in recs
        ]
    elif fmt == "pdf":
        text = norm(pdf_text(body))
        assert_in_order(text, [part for pair in expected for part in pair])
    else:  # pragma: no cover
        raise AssertionError(fmt)


def csv_cell(value: str) -> str:
    """A cell as a spreadsheet must read it: a formula-like start turned into text."""
    return f"'{value}" if value.startswith(FORMULA_STARTS) else value


def seal_of(doc: Doc) -> str:
    """The contract's SHA-256: canonical JSON of the document without sha256 and signature."""
    body = {k: v for k, v in doc.items() if k not in ("sha256", "signature")}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def slug_words(title: str) -> list[str]:
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    return re.findall(r"[a-z0-9]+", ascii_title.lower())


def assert_download_headers(response: httpx.Response, fmt: str, title: str, position: int) -> None:
    """ETag and Repr-Digest of the bytes sent; attachment named after meeting and position."""
    body = response.content
    digest = hashlib.sha256(body).digest()
    assert response.headers["etag"] == f'"{digest.hex()}"'
    assert response.headers["repr-digest"] == f"sha-256=:{base64.b64encode(digest).decode()}:"
    assert response.headers["content-type"].split(";")[0].strip() == MEDIA[fmt]
    disposition = response.headers["content-disposition"]
    match = re.fullmatch(
        r'attachment; filename="([a-z0-9]+(?:-[a-z0-9]+)*)-recommendations-(\d+)\.([a-z]+)"',
        disposition,
    )
    assert match, disposition
    assert (int(match[2]), match[3]) == (position, fmt)
    slug = match[1].split("-")
    assert slug == slug_words(title)[: len(slug)], (slug, title)


# --- the worlds the tests run in -----------------------------------------------------------


@dataclass
class Demo:
    app: FastAPI
    meeting: str
    tokens: dict[str, str]
    users: dict[str, dict[str, Any]]

    def auth(self, handle: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[handle]}"}

    @property
    def core(self) -> PreparatoryMeetings:
        core: PreparatoryMeetings = self.app.state.container.app
        return core

    def uid(self, handle: str) -> str:
        return str(self.users[handle]["id"])

    def forget_renders(self) -> None:
        """Empty the render cache, so that the next download is rendered anew."""
        self.app.state.container.renders = RenderCache()


def open_demo(directory: Path, **settings: Any) -> Generator[Demo, None, None]:
    app = create_app(settings_for(directory, **{**NO_LIMITS, **settings}))
    try:
        loaded = load_demo(app.state.container.app)
        yield Demo(app, loaded["meeting_id"], loaded["tokens"], loaded["users"])
    finally:
        app.state.container.close()


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """The demo meeting (open, six recommendations), for tests that change nothing."""
    yield from open_demo(tmp_path_factory.mktemp("documents-shared") / "data")


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Demo]:
    """The demo meeting in a store of this test's own."""
    yield from open_demo(tmp_path / "data")


@pytest.fixture
async def client(shared: Demo) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(shared.app) as c:
        yield c


def url(demo: Demo) -> str:
    return f"/api/v1/meetings/{demo.meeting}/recommendations"


async def download(
    client: httpx.AsyncClient, demo: Demo, fmt: str, handle: str = "observer", **params: Any
) -> httpx.Response:
    response = await client.get(
        url(demo), params={"format": fmt, **params}, headers=demo.auth(handle)
    )
    assert response.status_code == 200, response.text[:1000]
    return response


async def live_json(client: httpx.AsyncClient, demo: Demo, **params: Any) -> Doc:
    doc: Doc = (await download(client, demo, "json", **params)).json()
    return doc


# --- every format holds every recommendation ------------------------------------------------


async def test_the_demo_document_holds_six_recommendations_in_theme_and_chair_order(
    shared: Demo, client: httpx.AsyncClient
) -> None:
    doc = await live_json(client, shared)
    assert doc["meeting"]["id"] == shared.meeting and doc["status"] == "open"
    assert doc["outcome_version"] is None
    assert [t["number"] for t in doc["themes"]] == [1, 2, 3]
    assert [(n, t) for n, t, _ in recommendations(doc)] == [
        ("1.1", "Shared situational-awareness platform for field missions"),
        ("1.2", "Data-driven early warning with safeguards for civilians"),
        ("2.1", "Regional counter-IED training hubs"),  # the chair's order comes first
        ("2.2", "Casualty evacuation within the 10-1-2 standard"),
        ("3.1", "Joint AU–UN planning for mission transitions"),
        ("3.2", "Predictable financing of AU-led peace support operations"),
    ]
    first = doc["themes"][0]["recommendations"][0]
    assert first["text"].startswith("Member States and the Secretariat")  # the final wording
    assert first["approved_by"] == "Ayesha Malik"
    assert first["proposer"] == {"name": "Rahul Banerjee", "delegation": "Bangladesh"}
    assert first["endorsements"] == ["Indonesia"]
    assert doc["themes"][2]["recommendations"][0]["merged_from"]  # the planning cell, merged


@pytest.mark.parametrize("fmt", FORMATS)
async def test_every_format_holds_every_recommendation_in_the_json_order(
    shared: Demo, client: httpx.AsyncClient, fmt: str
) -> None:
    doc = await live_json(client, shared)
    response = await download(client, shared, fmt)
    assert_holds(fmt, response.content, recommendations(doc))
    assert_download_headers(response, fmt, doc["meeting"]["title"], doc["position"])
    themes = [f"{t['number']}. {t['title']}" for t in doc["themes"]]
    annex = "Annex: provenance of the recommendations"
    if fmt in ("html", "md"):
        page = Page(response.text if fmt == "html" else markdown_html(response.content))
        assert page.texts("h2") == [*themes, annex]
    elif fmt == "docx":
        headings = [
            text for style, text in docx_paragraphs(response.content) if style == "Heading 1"
        ]
        assert headings == [*themes, annex]
    elif fmt == "pdf":
        assert_in_order(norm(pdf_text(response.content)), [*themes, annex])
    elif fmt == "csv":
        rows = csv_rows(response.content)
        assert list(rows[0]) == CSV_HEADER
        assert [(r["theme_number"], r["theme"]) for r in rows] == [
            (str(t["number"]), t["title"]) for t in doc["themes"] for _ in t["recommendations"]
        ]


@pytest.mark.parametrize("fmt", FORMATS)
async def test_accept_chooses_the_same_bytes_as_the_format_parameter(
    shared: Demo, client: httpx.AsyncClient, fmt: str
) -> None:
    by_parameter = await download(client, shared, fmt)
    by_accept = await client.get(
        url(shared), headers={**shared.auth("observer"), "Accept": MEDIA[fmt]}
    )
    assert by_accept.status_code == 200
    assert by_accept.content == by_parameter.content
    assert by_accept.headers["etag"] == by_parameter.headers["etag"]
    assert by_accept.headers["content-type"].split(";")[0] == MEDIA[fmt]


async def test_content_negotiation_by_quality_wildcards_and_default(
    shared: Demo, client: httpx.AsyncClient
) -> None:
    auth = shared.auth("observer")

    async def kind(accept: str | None) -> str:
        headers = auth if accept is None else {**auth, "Accept": accept}
        response = await client.get(url(shared), headers=headers)
        assert response.status_code == 200, response.text
        return response.headers["content-type"].split(";")[0]

    assert await kind(None) == "application/json"
    assert await kind("*/*") == "application/json"
    assert await kind("application/pdf;q=0.4, text/csv;q=0.9") == "text/csv"
    assert await kind("image/png, text/html;q=0.1") == "text/html"
    assert await kind("application/xml, application/*;q=0.2") == "application/json"


async def test_an_accept_header_naming_no_served_format_is_406_problem(
    shared: Demo, client: httpx.AsyncClient
) -> None:
    for accept in ("image/png", "application/xml, text/plain;q=0.5", "text/csv;q=0"):
        response = await client.get(
            url(shared), headers={**shared.auth("observer"), "Accept": accept}
        )
        body = assert_problem(response, 406, "not-acceptable")
        assert "text/csv" in body["detail"]


async def test_an_unknown_format_is_422_even_with_a_served_accept(
    shared: Demo, client: httpx.AsyncClient
) -> None:
    for fmt in ("xml", "PDF", "", "docx "):
        response = await client.get(
            url(shared),
            params={"format": fmt},
            headers={**shared.auth("observer"), "Accept": "application/json"},
        )
        assert_problem(response, 422)


async def test_the_json_seal_is_the_sha256_of_the_canonical_json_without_it(
    shared: Demo, client: httpx.AsyncClient
) -> None:
    doc = await live_json(client, shared)
    assert HEX64.match(doc["sha256"]) and "signature" not in doc
    assert doc["sha256"] == seal_of(doc)
    touched = json.loads(json.dumps(doc))
    touched["themes"][0]["recommendations"][0]["text"] += " "
    assert seal_of(touched) != doc["sha256"]
    # the other formats name the same seal (CSV has no room for it)
    for fmt in ("md", "html"):
        assert doc["sha256"] in (await download(client, shared, fmt)).content.decode()
    pdf = PdfReader(io.BytesIO((await download(client, shared, "pdf")).content))
    assert all(doc["sha256"] in page.extract_text() for page in pdf.pages)
    word = docx.Document(io.BytesIO((await download(client, shared, "docx")).content))
    assert word.core_properties.keywords == f"sha256:{doc['sha256']}"


async def test_two_downloads_of_the_same_position_are_byte_identical_in_every_format(
    shared: Demo, client: httpx.AsyncClient
) -> None:
    first = {fmt: (await download(client, shared, fmt)).content for fmt in FORMATS}
    shared.forget_renders()
    second = {
        fmt: (await download(client, shared, fmt, handle="berlin")).content for fmt in FORMATS
    }
    assert second == first
    assert all(first.values())


async def test_if_none_match_with_the_etag_is_304_without_a_body(
    shared: Demo, client: httpx.AsyncClient
) -> None:
    for fmt in FORMATS:
        response = await download(client, shared, fmt)
        etag = response.headers["etag"]
        for condition in (etag, f'"{"0" * 64}", {etag}', f"W/{etag}", "*"):
            again = await client.get(
                url(shared),
                params={"format": fmt},
                headers={**shared.auth("observer"), "If-None-Match": condition},
            )
            assert again.status_code == 304, (fmt, condition)
            assert again.content == b"" and again.headers["etag"] == etag
        other = await client.get(
            url(shared),
            params={"format": fmt},
            headers={**shared.auth("observer"), "If-None-Match": f'"{"0" * 64}"'},
        )
        assert other.status_code == 200 and other.content == response.content


# --- as_of --------------------------------------------------------------------------------


async def test_as_of_the_documents_position_gives_identical_bytes_after_the_meeting_moved_on(
    fresh: Demo,
) -> None:
    async with client_for(fresh.app) as client:
        before = {fmt: await download(client, fresh, fmt) for fmt in FORMATS}
        doc = before["json"].json()
        position = doc["position"]
        # same position, served from the view
        for fmt, response in before.items():
            fresh.forget_renders()
            again = await download(client, fresh, fmt, as_of=str(position))
            assert again.content == response.content, fmt
            assert_download_headers(again, fmt, doc["meeting"]["title"], position)

        # the meeting moves on: a submitted proposal is approved, another is reconsidered
        submitted = await client.get(
            f"/api/v1/meetings/{fresh.meeting}/proposals",
            params={"status": "submitted", "theme": "technology"},
            headers=fresh.auth("chair-tech"),
        )
        (proposal,) = submitted.json()["items"]
        approved = await client.post(
            f"/api/v1/proposals/{proposal['id']}/approve",
            json={"final_text": "Later wording."},
            headers=fresh.auth("chair-tech"),
        )
        assert approved.status_code == 200, approved.text
        live = await live_json(client, fresh)
        assert live["position"] == approved.json()["position"] > position
        assert [n for n, _, _ in recommendations(live)][:3] == ["1.1", "1.2", "1.3"]

        # now as_of the old position is replayed from the log: the same bytes
        fresh.forget_renders()
        for fmt, response in before.items():
            again = await download(client, fresh, fmt, as_of=str(position))
            assert again.content == response.content, fmt
        # and any position up to the next change of the document gives that document
        between = await download(client, fresh, "json", as_of=str(live["position"] - 1))
        assert between.content == before["json"].content


async def test_as_of_a_time_compiles_the_document_as_it_stood_then(
    shared: Demo, client: httpx.AsyncClient
) -> None:
    doc = await live_json(client, shared)
    by_approval = sorted(
        (r["approved_at"], r["title"]) for theme in doc["themes"] for r in theme["recommendations"]
    )
    moment, _ = by_approval[3]  # the fourth approval: casevac and counter-IED both approved
    then = await live_json(client, shared, as_of=moment)
    assert then["position"] < doc["position"]
    assert sorted(t for _, t, _ in recommendations(then)) == sorted(t for _, t in by_approval[:4])
    # the chair ordered the safety theme only later: approval order then
    assert [(n, t) for n, t, _ in recommendations(then)][2:] == [
        ("2.1", "Casualty evacuation within the 10-1-2 standard"),
        ("2.2", "Regional counter-IED training hubs"),
    ]
    # the same instant with another offset, and its position, give the same bytes
    instant = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    karachi = instant.astimezone(timezone(timedelta(hours=5))).isoformat()
    for fmt in FORMATS:
        at_time = await download(client, shared, fmt, as_of=moment)
        assert (await download(client, shared, fmt, as_of=karachi)).content == at_time.content
        at_position = await download(client, shared, fmt, as_of=str(then["position"]))
        assert at_position.content == at_time.content
        assert_download_headers(at_time, fmt, doc["meeting"]["title"], then["position"])
    # a time after every event is the live document
    later = (instant + timedelta(days=3650)).isoformat().replace("+00:00", "Z")
    assert (await download(client, shared, "json", as_of=later)).json() == doc


async def test_as_of_past_the_last_position_or_not_a_moment_is_422(
    shared: Demo, client: httpx.AsyncClient
) -> None:
    last = shared.core.last_position()
    for as_of in (str(last + 1), str(10**12), "yesterday", "2025-04-15T10:00:00", "-1", "1.5"):
        response = await client.get(
            url(shared), params={"as_of": as_of}, headers=shared.auth("observer")
        )
        assert_problem(response, 422)
    ok = await client.get(url(shared), params={"as_of": str(last)}, headers=shared.auth("observer"))
    assert ok.status_code == 200


# --- hostile text through the API -----------------------------------------------------------

URDU = "پاکستان میں امن کے لیے ٹیکنالوجی"
HANGUL = "평화유지 활동의 안전과 보안"
EMOJI = "🕊️ peace 🌍 ✅"
SHAPED = re.compile("[\u0590-\u08ff\ufe00-\ufe0f\U00010000-\U0010ffff]")
LONG_TEXT = " ".join(f"w{i}" for i in range(5000))[:19_999] + "."

# (title, text, final wording or None): each approved, in this order, in one theme
CORPUS: list[tuple[str, str, str | None]] = [
    ("<script>alert('title')</script>", "<script>alert('text')</script> plain", None),
    (
        '<img src="http://evil.example/i.png" onerror="alert(1)">',
        '<iframe src="http://evil.example/"></iframe><a href="javascript:alert(1)">x</a>',
        None,
    ),
    (
        "[click here](http://evil.example/phish)",
        "![pixel](http://evil.example/p.png) and <http://evil.example/> and www.evil.example",
        "[final](http://evil.example/f) ![f](http://evil.example/f.png) mail@evil.example",
    ),
    ('=HYPERLINK("http://x")', '=HYPERLINK("http://x","click")', None),
    ("@SUM(A1)", "@SUM(A1:A9)", "+1+cmd|' /C calc'!A0"),
    ("-2+3", "-2+3 minus", None),
    ("+CMD", "+SUM(1)", None),
    ("\tTab-led title", "\tTab-led wording\twith a tab", None),
    ("Line ends", "first line\r\nsecond line\rthird line\n\n# not a heading\n1. not a list", None),
    (URDU, f"{URDU} — سلامتی اور تحفظ", None),
    (f"Hangul {HANGUL}", f"{HANGUL}: 기술의 활용", None),
    (EMOJI, "Peace 🕊️ and the globe 🌍 done ✅", None),
    ("&lt;b&gt; entity &amp; <b>bold</b> | pipe | `code`", "*em* _em_ **strong** ~~gone~~", None),
    ("A twenty-thousand-character wording", "short", LONG_TEXT),
]
NASTY_NAME = "<script>alert('name')</script>"
NASTY_DELEGATION = '=HYPERLINK("http://d")'
NASTY_ENDORSER = "@Endorsing delegation"
NASTY_CHAIR = "-Chair <b>Bold</b>"


@dataclass
class Hostile:
    app: FastAPI
    meeting: str
    secretariat: dict[str, str]
    recs: list[Rec]
    """(number, title, wording) as the API took them."""


async def write_corpus(app: FastAPI, client: httpx.AsyncClient) -> Hostile:
    core: PreparatoryMeetings = app.state.container.app
    secretariat = core.create_user(SYSTEM, "Amina Qureshi", "UN DPO", secretariat=True)
    head = {"Authorization": f"Bearer {secretariat.extra['token']}"}

    async def user(name: str, delegation: str) -> tuple[str, dict[str, str]]:
        created = await client.post(
            "/api/v1/users", json={"name": name, "delegation": delegation}, headers=head
        )
        assert created.status_code == 201, created.text
        body = created.json()
        return body["id"], {"Authorization": f"Bearer {body['token']}"}

    rapporteur, as_rapporteur = await user(NASTY_NAME, NASTY_DELEGATION)
    endorser, as_endorser = await user("Siti Rahayu", NASTY_ENDORSER)
    chair, as_chair = await user(NASTY_CHAIR, "Pakistan")
    scheduled = await client.post(
        "/api/v1/meetings",
        json={
            "title": "<script>alert('meeting')</script> Hostile [m](http://evil.example)",
            "venue": '=HYPERLINK("http://v")',
            "starts_on": "2025-04-15",
            "ends_on": "2025-04-16",
            "hosts": ["Pakistan", HANGUL],
            "ministerial": "berlin-2025",
            "themes": [{"key": "technology", "title": "<h1>Theme</h1> ## [t](http://e)"}],
        },
        headers=head,
    )
    assert scheduled.status_code == 201, scheduled.text
    meeting = scheduled.json()["id"]
    for uid, role in ((rapporteur, "rapporteur"), (endorser, "rapporteur"), (chair, "chair")):
        enrolled = await client.post(
            f"/api/v1/meetings/{meeting}/participants",
            json={"user_id": uid, "role": role, "themes": ["technology"]},
            headers=head,
        )
        assert enrolled.status_code == 201, enrolled.text
    assert (await client.post(f"/api/v1/meetings/{meeting}/open", headers=head)).status_code == 200

    refused = await client.post(
        f"/api/v1/meetings/{meeting}/proposals",
        json={"theme": "technology", "title": "NUL \x00 BEL \x07", "text": "x"},
        headers=as_rapporteur,
    )
    assert_problem(refused, 422)  # control characters other than tab and line ends

    recs: list[Rec] = []
    for n, (title, text, final) in enumerate(CORPUS, start=1):
        drafted = await client.post(
            f"/api/v1/meetings/{meeting}/proposals",
            json={"theme": "technology", "title": title, "text": text, "submit": True},
            headers=as_rapporteur,
        )
        assert drafted.status_code == 201, drafted.text
        pid = drafted.json()["id"]
        assert drafted.json()["title"] == title and drafted.json()["text"] == text
        if n % 3 == 1:
            endorsed = await client.post(
                f"/api/v1/proposals/{pid}/endorsements",
                json={"delegation": NASTY_ENDORSER},
                headers=as_endorser,
            )
            assert endorsed.status_code == 201, endorsed.text
        body = {} if final is None else {"final_text": final}
        approved = await client.post(
            f"/api/v1/proposals/{pid}/approve", json=body, headers=as_chair
        )
        assert approved.status_code == 200, approved.text
        recs.append((f"1.{n}", title, text if final is None else final))
    return Hostile(app, meeting, head, recs)


@pytest.fixture
async def hostile(tmp_path: Path) -> AsyncIterator[tuple[Hostile, httpx.AsyncClient]]:
    app = create_app(settings_for(tmp_path / "data", **NO_LIMITS))
    try:
        async with client_for(app) as client:
            yield await write_corpus(app, client), client
    finally:
        app.state.container.close()


async def test_hostile_text_comes_out_as_text_in_every_format_and_nothing_is_fetched(
    hostile: tuple[Hostile, httpx.AsyncClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    world, client = hostile
    path = f"/api/v1/meetings/{world.meeting}/recommendations"
    connections: list[object] = []

    def refuse(*args: object, **kwargs: object) -> None:
        connections.append(args[1:] or kwargs)
        raise PermissionError("no network while rendering")

    with monkeypatch.context() as patched:
        patched.setattr(socket.socket, "connect", refuse)
        patched.setattr(socket.socket, "connect_ex", refuse)
        patched.setattr(socket, "create_connection", refuse)
        downloads, responses = {}, {}
        for fmt in FORMATS:
            response = await client.get(path, params={"format": fmt}, headers=world.secretariat)
            assert response.status_code == 200, (fmt, response.text[:500])
            downloads[fmt], responses[fmt] = response.content, response
    assert connections == []

    doc = json.loads(downloads["json"])
    assert recommendations(doc) == world.recs  # the JSON holds exactly what was written
    assert doc["sha256"] == seal_of(doc)
    for fmt in FORMATS:
        assert_download_headers(responses[fmt], fmt, doc["meeting"]["title"], doc["position"])
        if fmt == "pdf":  # Arabic script is shaped and reordered, emoji checked below
            recs = [r for r in world.recs if not SHAPED.search(r[1] + r[2])]
            assert len(recs) == len(world.recs) - 2
            assert_holds(fmt, downloads[fmt], recs)
        else:
            assert_holds(fmt, downloads[fmt], world.recs)

    # HTML: nothing but the page's own markup; no script, image, frame or link
    html = downloads["html"].decode()
    assert not re.search(r"<\s*(script|img|iframe|a|object|embed|link)\b", html, re.I)
    page = Page(html)
    assert {tag for tag, _ in page.tags} <= {
        "html", "head", "meta", "title", "style", "body", "header", "main", "footer",
        "section", "article", "h1", "h2", "h3", "p", "dl", "dt", "dd", "span", "table",
        "thead", "tbody", "tr", "th", "td",
    }  # fmt: skip
    assert not {name for _, attrs in page.tags for name in attrs} & {"src", "href", "onerror"}
    assert (
        page.texts("h1")[0] == "<script>alert('meeting')</script> Hostile [m](http://evil.example)"
    )
    assert "<h1>Theme</h1> ## [t](http://e)" in page.texts("h2")[0]
    annex = page.texts("td")
    assert f"{NASTY_NAME} ({NASTY_DELEGATION})" in annex and NASTY_ENDORSER in annex

    # Markdown: every markup character escaped; rendered, it is text only
    md = downloads["md"].decode()
    assert not re.search(r"(?<!\\)[<>\[\]`]", md)
    rendered = markdown_html(downloads["md"])
    assert "<script" not in rendered.lower() and "<img" not in rendered.lower()
    md_page = Page(rendered)
    assert {tag for tag, _ in md_page.tags} <= {
        "h1",
        "h2",
        "h3",
        "p",
        "em",
        "strong",
        "ul",
        "li",
        "br",
    }
    assert md_page.texts("h1")[0] == page.texts("h1")[0]
    assert f"Proposed by: {NASTY_NAME} ({NASTY_DELEGATION})" in md_page.texts("li")

    # CSV: no cell starts a formula; the neutralised cells keep the whole text
    rows = list(csv.reader(io.StringIO(downloads["csv"].decode(), newline="")))
    assert rows[0] == CSV_HEADER
    assert not [cell for row in rows for cell in row if cell.startswith(FORMULA_STARTS)]
    by_number = {row[2]: row for row in rows[1:]}
    assert by_number["1.4"][4:6] == ['\'=HYPERLINK("http://x")', '\'=HYPERLINK("http://x","click")']
    assert by_number["1.5"][4:6] == ["'@SUM(A1)", "'+1+cmd|' /C calc'!A0"]
    assert by_number["1.6"][4] == "'-2+3" and by_number["1.7"][4] == "'+CMD"
    assert by_number["1.8"][4:6] == ["Tab-led title", "Tab-led wording\twith a tab"]
    assert by_number["1.1"][6:10] == [NASTY_NAME, "'" + NASTY_DELEGATION, "'" + NASTY_ENDORSER,
                                     "'" + NASTY_CHAIR]  # fmt: skip
    assert len(by_number["1.14"][5]) == 20_000

    # PDF: the text, as text, in every script; no link, launch or script action
    pdf = downloads["pdf"]
    flat = norm(pdf_text(pdf))
    for needle in ("<script>alert('title')</script>", '<img src="http://evil.example/i.png"',
                   "[click here](http://evil.example/phish)", '=HYPERLINK("http://x")',
                   HANGUL, "🕊", "🌍", "✅", "<b>bold</b>", NASTY_NAME):  # fmt: skip
        assert needle in flat, needle
    shaped = unicodedata.normalize("NFKC", flat)
    assert all(word in shaped or word[::-1] in shaped for word in URDU.split())
    assert norm(LONG_TEXT) in flat
    assert b"/URI" not in pdf and b"/Launch" not in pdf and b"/JavaScript" not in pdf

    # DOCX: the text in its paragraphs; no hyperlink, image or external relationship
    document = docx.Document(io.BytesIO(downloads["docx"]))
    related = {rel.reltype.rsplit("/", 1)[-1] for rel in document.part.rels.values()}
    assert not related & {"hyperlink", "image", "oleObject", "attachedTemplate"}
    assert not any(rel.is_external for rel in document.part.rels.values())
    texts = [p.text for p in document.paragraphs]
    assert LONG_TEXT in texts and "Tab-led wording\twith a tab" in texts
    assert "first line\nsecond line\nthird line\n\n# not a heading\n1. not a list" in texts
    with zipfile.ZipFile(io.BytesIO(downloads["docx"])) as package:
        body = package.read("word/document.xml").decode()
    assert "&lt;script&gt;alert('title')&lt;/script&gt;" in body and "<w:bidi/>" in body
