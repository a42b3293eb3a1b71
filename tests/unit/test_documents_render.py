"""The compiled document in every format: the same recommendations in the same order, the
same bytes at every render, user text escaped, and nothing fetched or read while rendering."""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import os
import re
import subprocess
import sys
import unicodedata
import zipfile
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, cast

import docx
import pytest
from markdown_it import MarkdownIt
from pypdf import PdfReader
from pypdf.generic import DictionaryObject

from projections.documents import (
    FORMATS,
    UnknownFormat,
    canonical_bytes,
    json_bytes,
    render,
    render_ministerial,
    seal,
)

ROOT = Path(__file__).resolve().parents[2]
Doc = dict[str, Any]

URDU = "پاکستان میں امن کے لیے ٹیکنالوجی"
HANGUL = "평화유지 활동의 안전과 보안"
NASTY = [
    "<script>alert(1)</script>",
    "<img src=http://x/y.png>",
    "[x](http://evil)",
    "![i](http://evil/i.png)",
    '=HYPERLINK("http://x")',
    "@SUM(A1)",
    "+1",
    "-1",
    "\tstarts with a tab",
    "\rstarts with a carriage return",
    "NUL\x00 BEL\x07 ESC\x1b VT\x0b DEL\x7f end",
    URDU,
    "السلام عليكم ورحمة الله",
    HANGUL,
    "🕊️ peace 🌍 ✅",
    "# not a heading",
    "1. not a list",
    "www.evil.example and mail@evil.example",
    "&lt;b&gt; entity &amp; <b>bold</b>",
]
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f]")


def _clean(text: str) -> str:
    return CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


def _one_line(text: str) -> str:
    return " ".join(_clean(text).split())


def _recommendation(theme: int, n: int, title: str, text: str, **extra: Any) -> Doc:
    return {
        "number": f"{theme}.{n}",
        "proposal_id": f"2b7e1c40-0000-4000-8000-{theme:04d}{n:08d}",
        "title": title,
        "text": text,
        "proposer": extra.get("proposer", {"name": "Ayesha Khan", "delegation": "Pakistan"}),
        "endorsements": extra.get("endorsements", []),
        "approved_by": extra.get("approved_by", "Amb. Farah Qureshi"),
        "approved_at": f"2025-04-16T{9 + n:02d}:{n * 4:02d}:00Z",
        "merged_from": extra.get("merged_from", []),
    }


def _meeting(**overrides: Any) -> Doc:
    meeting = {
        "id": "9a1f3b52-5d0e-4c41-9f7a-3c2b1d0e6f01",
        "title": "Third UN Peacekeeping Ministerial Preparatory Meeting",
        "venue": "Centre for International Peace and Stability (CIPS), NUST, Islamabad",
        "starts_on": "2025-04-15",
        "ends_on": "2025-04-16",
        "hosts": ["Pakistan", "Republic of Korea"],
        "ministerial": "berlin-2025",
    }
    return meeting | overrides


TECHNOLOGY = [
    ("Integrated situational awareness", "Missions should adopt an integrated situational "
     "awareness platform that joins uniformed and civilian reporting."),
    ("Early warning through data", "The Secretariat should extend data-driven early warning "
     "to every mission, with clear rules on the protection of personal data.\nReports should "
     "reach the Force Commander within the hour."),
    ("Training in digital skills", "Troop- and police-contributing countries should receive "
     "pre-deployment training in the technology they will use."),
    ("Unmanned aerial systems", "Missions should use unmanned aerial systems for the "
     "protection of civilians, within a common policy on their use."),
    ("Countering disinformation", "Strategic communications units should detect and answer "
     "disinformation and hate speech that target peacekeepers."),
    ("Partnerships for technology", "Member States should pair technology providers with "
     "contributing countries under the Light Coordination Mechanism."),
]  # fmt: skip
SAFETY = [
    ("Casualty evacuation within the golden hour", "Every mission should be able to evacuate "
     "a casualty to surgical care within one hour of injury."),
    ("Counter-IED capability", "Contributing countries should field counter-explosive "
     "capability and training before deployment."),
    ("Camp protection", "Missions should harden camps with sensors, barriers and "
     "standard procedures for the protection of personnel."),
    ("Mental health of peacekeepers", "Missions should give every peacekeeper access to "
     "psychological support before, during and after deployment."),
    ("Accountability for crimes against peacekeepers", "Host states should investigate and "
     "prosecute crimes against peacekeepers, with the support of the Secretariat."),
    ("Medical standards", "Field hospitals should meet common medical standards, checked "
     "by an assessment visit before deployment."),
]  # fmt: skip


def islamabad_outcome() -> Doc:
    themes = [("technology", "Use of technology in peacekeeping", TECHNOLOGY),
              ("safety-security", "Safety and security of peacekeepers", SAFETY),
              ("regional-cooperation", "Cooperation between regional organizations and the UN",
               [])]  # fmt: skip
    doc = {
        "meeting": _meeting(),
        "status": "forwarded",
        "outcome_version": 2,
        "position": 1234,
        "position_at": "2025-04-16T17:05:00Z",
        "themes": [
            {
                "number": t,
                "key": key,
                "title": title,
                "recommendations": [
                    _recommendation(
                        t, n, rec_title, text,
                        endorsements=["Republic of Korea", "Ghana", "Uruguay"][: n % 4],
                        merged_from=[f"5c0d4e1a-0000-4000-8000-{t:04d}{n:08d}"] if n == 2 else [],
                    )
                    for n, (rec_title, text) in enumerate(recs, start=1)
                ],
            }
            for t, (key, title, recs) in enumerate(themes, start=1)
        ],
    }  # fmt: skip
    return {**seal(doc), "signature": "c2lnbmF0dXJlIG9mIHRoZSBmb3J3YXJkZWQgdmVyc2lvbg=="}


def hostile_outcome() -> Doc:
    """Every field a user writes filled with text that tries to become markup or a formula."""
    recs = [
        _recommendation(
            1, n, nasty, f"{nasty} wording {n}",
            proposer={"name": nasty, "delegation": NASTY[-n]},
            endorsements=[NASTY[n - 1], "Ghana"], approved_by=nasty,
        )
        for n, nasty in enumerate(NASTY, start=1)
    ]  # fmt: skip
    words = " ".join(["peacekeeping"] * 1540) + " " + "x" * 2000
    recs.append(_recommendation(1, len(recs) + 1, "A very long text", words[:20000]))
    return seal({
        "meeting": _meeting(title="<script>alert('t')</script> " + URDU, venue="[v](http://e)",
                            hosts=["=cmd|' /C calc'!A0", HANGUL]),
        "status": "open",
        "outcome_version": None,
        "position": 77,
        "themes": [{"number": 1, "key": "t", "title": "<h1>Theme</h1> ## x",
                    "recommendations": recs}],
    })  # fmt: skip


def expected(doc: Doc) -> list[tuple[str, str, str]]:
    return [
        (r["number"], r["title"], r["text"]) for t in doc["themes"] for r in t["recommendations"]
    ]


def norm(text: str) -> str:
    return " ".join(text.split())


class Page(HTMLParser):
    """The tags of an HTML page and the text of its blocks, in order."""

    BLOCKS = frozenset({"title", "h1", "h2", "h3", "h4", "p", "li", "dt", "dd", "th", "td"})

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.blocks: list[list[str]] = []
        self._open: list[str] | None = None
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag in self.BLOCKS:
            self._open = [tag, ""]
            self.blocks.append(self._open)
        elif tag == "br" and self._open is not None:
            self._open[1] += "\n"

    def handle_endtag(self, tag: str) -> None:
        if self._open is not None and tag == self._open[0]:
            self._open = None

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._open[1] += data

    def headed(self, heading: str) -> list[tuple[str, str]]:
        """(heading text, text of the paragraph right after it) for each `heading` tag."""
        pairs = itertools.pairwise(self.blocks)
        return [(norm(h[1]), norm(p[1])) for h, p in pairs if h[0] == heading and p[0] == "p"]


def markdown_page(data: bytes) -> Page:
    return Page(MarkdownIt("gfm-like").render(data.decode()))


def pdf_text(data: bytes) -> str:
    """The text of every page, each page's footer checked and taken out."""
    pages = PdfReader(io.BytesIO(data)).pages
    footer = re.compile(r"^Page (\d+) of \nSHA-256 [0-9a-f]{64}\n(\d+)\n")
    texts = []
    for number, page in enumerate(pages, start=1):
        text = page.extract_text()
        match = footer.match(text)
        assert match, text[:200]
        assert (int(match[1]), int(match[2])) == (number, len(pages))
        texts.append(text[match.end() :])
    return "\n".join(texts)


def pdf_info(data: bytes) -> dict[str, str]:
    info = PdfReader(io.BytesIO(data)).metadata
    assert info is not None
    return {str(key): str(value) for key, value in info.items()}


def assert_in_order(haystack: str, needles: list[str]) -> None:
    position = 0
    for needle in needles:
        found = haystack.find(needle, position)
        assert found >= 0, f"missing or out of order: {needle[:80]!r}"
        position = found + len(needle)


@pytest.fixture(scope="module")
def outcome() -> Doc:
    return islamabad_outcome()


@pytest.fixture(scope="module")
def hostile() -> Doc:
    return hostile_outcome()


@pytest.fixture(scope="module")
def rendered(outcome: Doc) -> dict[str, bytes]:
    return {fmt: render(outcome, fmt) for fmt in FORMATS}


@pytest.fixture(scope="module")
def hostile_rendered(hostile: Doc) -> dict[str, bytes]:
    return {fmt: render(hostile, fmt) for fmt in FORMATS}


# -- the JSON form and its seal ----------------------------------------------------------


def test_the_seal_is_the_sha256_of_the_canonical_bytes_without_seal_and_signature(
    outcome: Doc,
) -> None:
    unsigned = {k: v for k, v in outcome.items() if k not in ("sha256", "signature")}
    canonical = json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert canonical_bytes(outcome) == canonical.encode()
    assert outcome["sha256"] == hashlib.sha256(canonical.encode()).hexdigest()
    assert seal(outcome)["sha256"] == outcome["sha256"]
    assert seal({**outcome, "position": 1235})["sha256"] != outcome["sha256"]


def test_the_json_download_is_the_whole_document_in_canonical_form(
    outcome: Doc, rendered: dict[str, bytes]
) -> None:
    dumped = json.dumps(outcome, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert rendered["json"] == json_bytes(outcome) == dumped.encode()
    assert json.loads(rendered["json"]) == outcome
    assert b'"signature":' in rendered["json"]
    assert json_bytes({"t": HANGUL}) == f'{{"t":"{HANGUL}"}}'.encode()


def test_the_registry_names_each_format_with_its_media_type_and_extension() -> None:
    assert {k: (f.media_type, f.extension) for k, f in FORMATS.items()} == {
        "json": ("application/json", "json"),
        "md": ("text/markdown; charset=utf-8", "md"),
        "html": ("text/html; charset=utf-8", "html"),
        "pdf": ("application/pdf", "pdf"),
        "docx": (
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "docx",
        ),
        "csv": ("text/csv; charset=utf-8", "csv"),
    }
    with pytest.raises(UnknownFormat):
        render({}, "xml")


# -- every format holds every recommendation, in the JSON's order ----------------------


def test_markdown_holds_every_recommendation_in_order(
    outcome: Doc, rendered: dict[str, bytes]
) -> None:
    raw = rendered["md"].decode()
    assert raw.startswith("# Third UN Peacekeeping Ministerial Preparatory Meeting\n")
    assert "## 1. Use of technology in peacekeeping" in raw
    assert (
        "## 3. Cooperation between regional organizations and the UN\n\nNo recommendations." in raw
    )
    assert_in_order(raw, [f"### {number} {title}" for number, title, _ in expected(outcome)])
    pairs = markdown_page(rendered["md"]).headed("h3")
    assert pairs == [(f"{n} {title}", norm(text)) for n, title, text in expected(outcome)]


def test_html_holds_every_recommendation_in_order(outcome: Doc, rendered: dict[str, bytes]) -> None:
    page = Page(rendered["html"].decode())
    assert page.headed("h3") == [(f"{n} {t}", norm(text)) for n, t, text in expected(outcome)]
    themes = [text for tag, text in page.blocks if tag == "h2"]
    assert themes[:3] == [
        "1. Use of technology in peacekeeping",
        "2. Safety and security of peacekeepers",
        "3. Cooperation between regional organizations and the UN",
    ]
    assert ["p", "No recommendations."] in page.blocks


def test_pdf_holds_every_recommendation_in_order(outcome: Doc, rendered: dict[str, bytes]) -> None:
    text = norm(pdf_text(rendered["pdf"]))
    assert_in_order(text, ["Third UN Peacekeeping", "Outcome version 2", outcome["sha256"]])
    needles = []
    for number, title, wording in expected(outcome):
        needles += [f"{number} {title}", norm(wording)]
    assert_in_order(text, needles)
    assert "3. Cooperation between regional organizations and the UN No recommendations." in text


def test_docx_holds_every_recommendation_in_order_under_word_headings(
    outcome: Doc, rendered: dict[str, bytes]
) -> None:
    paragraphs = docx.Document(io.BytesIO(rendered["docx"])).paragraphs
    styled = [(p.style.name if p.style else "", p.text) for p in paragraphs]
    assert styled[0] == ("Title", outcome["meeting"]["title"])
    assert [text for style, text in styled if style == "Heading 1"] == [
        "1. Use of technology in peacekeeping",
        "2. Safety and security of peacekeepers",
        "3. Cooperation between regional organizations and the UN",
        "Annex: provenance of the recommendations",
    ]
    found = [
        (heading, body)
        for (style, heading), (_, body) in itertools.pairwise(styled)
        if style == "Heading 2"
    ]
    assert found == [(f"{n} {title}", text) for n, title, text in expected(outcome)]


def test_csv_holds_every_recommendation_in_order_with_its_provenance(
    outcome: Doc, rendered: dict[str, bytes]
) -> None:
    data = rendered["csv"]
    assert data.startswith(
        b"theme_number,theme,number,proposal_id,title,text,proposer,delegation,endorsements,"
        b"approved_by,approved_at,merged_from\r\n"
    )
    rows = list(csv.DictReader(io.StringIO(data.decode(), newline="")))
    assert [(r["number"], r["title"], r["text"]) for r in rows] == expected(outcome)
    first = outcome["themes"][0]["recommendations"][1]
    assert {
        "theme_number": "1",
        "theme": "Use of technology in peacekeeping",
        "proposal_id": first["proposal_id"],
        "proposer": "Ayesha Khan",
        "delegation": "Pakistan",
        "endorsements": "Republic of Korea; Ghana",
        "approved_by": "Amb. Farah Qureshi",
        "approved_at": first["approved_at"],
        "merged_from": first["merged_from"][0],
    }.items() <= rows[1].items()


def test_the_title_block_and_annex_carry_the_meeting_and_the_provenance(
    outcome: Doc, rendered: dict[str, bytes]
) -> None:
    page = Page(rendered["html"].decode())
    facts = dict(zip(
        [text for tag, text in page.blocks if tag == "dt"],
        [text for tag, text in page.blocks if tag == "dd"],
        strict=True,
    ))  # fmt: skip
    assert facts["SHA-256"] == outcome["sha256"]
    assert facts["Dates"] == "15–16 April 2025"
    assert facts["Co-hosts"] == "Pakistan, Republic of Korea"
    assert facts["Version"] == "Outcome version 2"
    assert facts["Position"] == "1234 (as at 16 April 2025, 17:05 UTC)"
    assert facts["Ministerial"] == "berlin-2025"
    annex_row = [text for tag, text in page.blocks if tag in ("th", "td")][6:12]
    rec = outcome["themes"][0]["recommendations"][0]
    assert annex_row == [
        "1.1",
        rec["proposal_id"],
        "Ayesha Khan (Pakistan)",
        "Republic of Korea",
        "Amb. Farah Qureshi, 16 April 2025, 10:04 UTC",
        "—",
    ]
    assert "Live draft" in render({**outcome, "outcome_version": None}, "md").decode()


# -- the same bytes every time ----------------------------------------------------------


def test_two_renders_are_byte_identical_in_every_format(
    outcome: Doc, rendered: dict[str, bytes]
) -> None:
    copy = json.loads(json.dumps(outcome))
    assert {fmt: render(copy, fmt) for fmt in FORMATS} == rendered


def test_another_process_renders_the_same_bytes(
    outcome: Doc, rendered: dict[str, bytes], tmp_path: Path
) -> None:
    path = tmp_path / "outcome.json"
    path.write_text(json.dumps(outcome), encoding="utf-8")
    script = (
        "import hashlib, json, sys\n"
        "from projections.documents import FORMATS, render\n"
        "doc = json.loads(open(sys.argv[1], encoding='utf-8').read())\n"
        "print(json.dumps({k: hashlib.sha256(render(doc, k)).hexdigest() for k in FORMATS}))\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "4242", "TZ": "Pacific/Kiritimati",
           "SOURCE_DATE_EPOCH": "86400"}  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-c", script, str(path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    theirs = json.loads(result.stdout)
    assert theirs == {fmt: hashlib.sha256(data).hexdigest() for fmt, data in rendered.items()}


def test_renders_running_at_once_in_threads_give_the_same_bytes(
    outcome: Doc, hostile: Doc, rendered: dict[str, bytes], hostile_rendered: dict[str, bytes]
) -> None:
    jobs = [(doc, fmt) for doc in (outcome, hostile) for fmt in ("pdf", "docx", "md")] * 2
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda job: render(*job), jobs))
    wanted = [(rendered if doc is outcome else hostile_rendered)[fmt] for doc, fmt in jobs]
    assert results == wanted


def test_pdf_and_docx_dates_come_from_the_document_never_the_clock(
    outcome: Doc, rendered: dict[str, bytes]
) -> None:
    info = pdf_info(rendered["pdf"])
    assert info["/CreationDate"] == info["/ModDate"] == "D:20250416170500+00'00'"
    assert info["/Title"] == outcome["meeting"]["title"]
    assert info["/Author"] == "Pakistan, Republic of Korea"
    assert "berlin-2025" in info["/Subject"]
    undated = {k: v for k, v in outcome.items() if k != "position_at"}
    assert pdf_info(render(undated, "pdf"))["/CreationDate"] == "D:20000101000000+00'00'"

    props = docx.Document(io.BytesIO(rendered["docx"])).core_properties
    assert props.created == datetime(2025, 4, 16, 17, 5, tzinfo=UTC)
    assert props.modified == props.created and props.title == outcome["meeting"]["title"]
    with zipfile.ZipFile(io.BytesIO(rendered["docx"])) as package:
        entries = package.infolist()
    assert {entry.date_time for entry in entries} == {(1980, 1, 1, 0, 0, 0)}
    assert entries[0].filename == "[Content_Types].xml"
    assert not any("thumbnail" in entry.filename for entry in entries)


# -- user text is escaped in every format ----------------------------------------------


def test_html_shows_hostile_text_as_text_and_fetches_nothing(
    hostile: Doc, hostile_rendered: dict[str, bytes]
) -> None:
    html = hostile_rendered["html"].decode()
    page = Page(html)
    tags = {tag for tag, _ in page.tags}
    assert tags <= {"html", "head", "meta", "title", "style", "body", "header", "main",
                    "footer", "section", "article", "h1", "h2", "h3", "p", "dl", "dt", "dd",
                    "span", "table", "thead", "tbody", "tr", "th", "td"}  # fmt: skip
    attributes = {name for _, attrs in page.tags for name in attrs}
    assert attributes <= {"lang", "charset", "http-equiv", "content", "name", "class", "id",
                          "dir", "scope"}  # fmt: skip
    assert page.tags[0] == ("html", {"lang": "en"})
    assert "@media print" in html and "default-src 'none'" in html
    headings = [heading for heading, _ in page.headed("h3")]
    assert headings == [norm(f"{n} {_one_line(title)}") for n, title, _ in expected(hostile)]
    assert ("h1", "<script>alert('t')</script> " + URDU) in [tuple(b) for b in page.blocks]
    assert sum('dir="auto"' in line for line in html.splitlines()) > len(NASTY)
    assert not CONTROL.search(html.replace("\n", ""))


def test_markdown_shows_hostile_text_as_text_when_rendered(
    hostile: Doc, hostile_rendered: dict[str, bytes]
) -> None:
    page = markdown_page(hostile_rendered["md"])
    tags = {tag for tag, _ in page.tags}
    assert tags <= {"h1", "h2", "h3", "p", "em", "strong", "ul", "li", "br"}, tags
    headings = [heading for heading, _ in page.headed("h3")]
    assert headings == [norm(f"{n} {_one_line(title)}") for n, title, _ in expected(hostile)]
    first = [tuple(block) for block in page.blocks][:2]
    assert first[0] == ("h1", "<script>alert('t')</script> " + URDU)
    assert ("h2", "1. <h1>Theme</h1> ## x") in [tuple(b) for b in page.blocks]
    raw = hostile_rendered["md"].decode()
    assert not re.search(r"(?<!\\)[<>\[\]()`]", raw)
    assert not CONTROL.search(raw.replace("\n", ""))


def test_csv_cells_never_start_a_formula(hostile: Doc, hostile_rendered: dict[str, bytes]) -> None:
    rows = list(csv.reader(io.StringIO(hostile_rendered["csv"].decode(), newline="")))
    cells = [cell for row in rows[1:] for cell in row]
    assert not [c for c in cells if c.startswith(("=", "+", "-", "@", "\t", "\r"))]
    titles = [row[4] for row in rows[1:]]
    assert titles[4:10] == [
        '\'=HYPERLINK("http://x")',
        "'@SUM(A1)",
        "'+1",
        "'-1",
        "starts with a tab",
        "starts with a carriage return",
    ]
    assert rows[3][6] == "[x](http://evil)" and rows[6][6:8] == ["'@SUM(A1)", HANGUL]
    assert titles[10] == "NUL BEL ESC VT DEL end"
    assert len(rows[-1][5]) == 20000
    assert not CONTROL.search(
        hostile_rendered["csv"].decode().replace("\r\n", "").replace("\n", "")
    )


def test_pdf_shows_hostile_text_as_text_with_every_script(
    hostile: Doc, hostile_rendered: dict[str, bytes]
) -> None:
    data = hostile_rendered["pdf"]
    reader = PdfReader(io.BytesIO(data))
    text = pdf_text(data)
    flat = norm(text)
    for nasty in ("<script>alert(1)</script>", "<img src=http://x/y.png>", "[x](http://evil)",
                  "![i](http://evil/i.png)", '=HYPERLINK("http://x")', HANGUL, "🕊"):  # fmt: skip
        assert nasty in flat
    assert "NUL BEL ESC VT DEL end" in flat and not CONTROL.search(text.replace("\n", ""))
    shaped = unicodedata.normalize("NFKC", flat)
    assert all(word in shaped or word[::-1] in shaped for word in URDU.split())
    assert len(reader.pages) > 5
    fonts = set()
    for page in reader.pages:
        assert "/Annots" not in page
        resources = cast(DictionaryObject, page["/Resources"].get_object())
        objects = cast(DictionaryObject, resources.get("/XObject", DictionaryObject()))
        assert all(str(obj.get_object()["/Subtype"]) == "/Form" for obj in objects.values())
        page_fonts = cast(DictionaryObject, resources["/Font"].get_object())
        fonts |= {str(font.get_object()["/BaseFont"]) for font in page_fonts.values()}
    assert any("NotoSansArabic" in font for font in fonts)
    assert any("WenQuanYi" in font for font in fonts)
    assert b"/URI" not in data and b"/Launch" not in data and b"/JavaScript" not in data


def test_docx_shows_hostile_text_as_text(hostile: Doc, hostile_rendered: dict[str, bytes]) -> None:
    document = docx.Document(io.BytesIO(hostile_rendered["docx"]))
    headings = [p.text for p in document.paragraphs if p.style and p.style.name == "Heading 2"]
    assert headings == [f"{n} {_one_line(title)}" for n, title, _ in expected(hostile)]
    related = {rel.reltype.rsplit("/", 1)[-1] for rel in document.part.rels.values()}
    assert not related & {"hyperlink", "image", "oleObject", "attachedTemplate"}
    with zipfile.ZipFile(io.BytesIO(hostile_rendered["docx"])) as package:
        body = package.read("word/document.xml").decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body and "<w:bidi/>" in body


def test_a_ministerial_compilation_is_one_document_with_each_meeting_a_part(
    outcome: Doc,
) -> None:
    second = seal({
        **{k: v for k, v in outcome.items() if k not in ("sha256", "signature")},
        "meeting": _meeting(id="0b5e2f61-1a3c-4d2e-8f90-1234567890ab", venue="Montevideo",
                            title="Preparatory Meeting on Women, Peace and Security",
                            starts_on="2025-02-24", ends_on="2025-02-25", hosts=["Uruguay"]),
        "outcome_version": 1,
    })  # fmt: skip
    comp = seal({"ministerial": "berlin-2025", "meetings": [second, outcome]})
    assert render_ministerial(comp, "json") == json_bytes(comp)
    md = render_ministerial(comp, "md").decode()
    assert_in_order(md, [
        "# Recommendations to the ministerial berlin-2025",
        "## Part 1: Preparatory Meeting on Women, Peace and Security",
        "### 1. Use of technology in peacekeeping",
        "#### 1.1 Integrated situational awareness",
        "## Part 2: Third UN Peacekeeping Ministerial Preparatory Meeting",
        "#### 2.6 Medical standards",
    ])  # fmt: skip
    html_parts = [t for tag, t in Page(render_ministerial(comp, "html").decode()).blocks
                  if tag == "h2"]  # fmt: skip
    assert html_parts == [
        "Part 1: Preparatory Meeting on Women, Peace and Security",
        "Part 2: Third UN Peacekeeping Ministerial Preparatory Meeting",
    ]
    document = docx.Document(io.BytesIO(render_ministerial(comp, "docx")))
    levels = [p.style.name for p in document.paragraphs if p.style and "Heading" in p.style.name]
    assert levels[:3] == ["Heading 1", "Heading 2", "Heading 3"]
    assert levels.count("Heading 1") == 2 and levels.count("Heading 3") == 24
    rows = list(csv.DictReader(io.StringIO(render_ministerial(comp, "csv").decode())))
    assert [r["meeting_id"] for r in rows] == [second["meeting"]["id"]] * 12 + [
        outcome["meeting"]["id"]
    ] * 12
    pdf = norm(pdf_text(render_ministerial(comp, "pdf")))
    assert_in_order(pdf, [comp["sha256"], "Part 1: Preparatory Meeting", "Part 2: Third UN"])
    assert render_ministerial(comp, "pdf") == render_ministerial(comp, "pdf")


# -- nothing fetched, nothing read ------------------------------------------------------

GUARDED_RENDER = """
import builtins, io, json, os, socket, sys, urllib.request
from projections.documents import FORMATS, preload, render, render_ministerial

with open(sys.argv[1], encoding="utf-8") as source:
    docs = json.load(source)
preload()
calls = []

def refuse(name):
    def refused(*args, **kwargs):
        calls.append(name)
        raise PermissionError(name)
    return refused

builtins.open = io.open = refuse("open")
os.open = refuse("os.open")
socket.socket.connect = refuse("socket.connect")
socket.create_connection = refuse("socket.create_connection")
urllib.request.urlopen = refuse("urlopen")
sizes = {}
for name, doc in docs["documents"].items():
    for fmt in FORMATS:
        sizes[name + "." + fmt] = len(render(doc, fmt))
for fmt in FORMATS:
    sizes["ministerial." + fmt] = len(render_ministerial(docs["ministerial"], fmt))
sys.stdout.write(json.dumps({"calls": calls, "sizes": sizes}))
"""


def test_rendering_reads_no_file_and_opens_no_connection(
    outcome: Doc, hostile: Doc, tmp_path: Path
) -> None:
    path = tmp_path / "documents.json"
    documents = {"outcome": outcome, "hostile": hostile}
    ministerial = seal({"ministerial": "berlin-2025", "meetings": [outcome, hostile]})
    path.write_text(json.dumps({"documents": documents, "ministerial": ministerial}), "utf-8")
    result = subprocess.run(
        [sys.executable, "-c", GUARDED_RENDER, str(path)],
        cwd=ROOT, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["calls"] == []
    assert len(report["sizes"]) == 3 * len(FORMATS) and all(report["sizes"].values())
