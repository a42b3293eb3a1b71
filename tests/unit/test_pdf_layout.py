"""The PDF's own layout of plain text: lines broken exactly as reportlab's Paragraph breaks
them, text encoded to the same bytes as reportlab encodes it, and pages that keep a
recommendation's heading off the foot of a page."""

from __future__ import annotations

import io
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pypdf import PdfReader
from reportlab.lib.units import cm as CENTIMETRE
from reportlab.pdfbase.pdfmetrics import getFont
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Paragraph

from projections.documents import render, seal
from projections.documents.as_pdf import LABEL_WIDTH, MARGIN, WIDTH, _Writer
from projections.documents.fonts import BASE, pdf_fonts

WORDS = st.sampled_from(
    ["peace", "keeping", "UN", "a", "Force", "Commander", "—", "(1,000)", "mission's",
     "x" * 90, "situational-awareness", "Ⅻ", "ß", "Ωmega"]
)  # fmt: skip
SEPARATORS = st.sampled_from([" ", "  ", "\t", " \xa0", "\xa0"])


def paragraph_lines(text: str, style: Any, width: float) -> list[str]:
    """The lines reportlab's Paragraph makes of `text` (words joined by a space)."""
    para = Paragraph(text, style)
    para.wrap(width, 10_000)
    return [" ".join(words) for _, words in para.blPara.lines]


@pytest.fixture(scope="module")
def writer() -> _Writer:
    return _Writer(pdf_fonts())


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    words=st.lists(WORDS, min_size=1, max_size=60),
    separators=st.lists(SEPARATORS, min_size=60, max_size=60),
    width=st.sampled_from([WIDTH, WIDTH - LABEL_WIDTH, LABEL_WIDTH, 120.0, 60.0]),
    kind=st.sampled_from(["body", "rec", "annex", "value", "label"]),
)
def test_plain_text_breaks_into_the_lines_a_paragraph_makes(
    writer: _Writer, words: list[str], separators: list[str], width: float, kind: str
) -> None:
    text = "".join(word + sep for word, sep in zip(words, separators, strict=False)).strip()
    style = getattr(writer, kind)
    ours = writer.wrapped(text, style, width)
    assert ours == paragraph_lines(text, style, width)
    assert ours, text


def test_a_word_longer_than_the_line_is_cut_from_where_the_line_has_room(writer: _Writer) -> None:
    text = "peace " + "x" * 400 + " keeping"
    lines = writer.wrapped(text, writer.body, WIDTH)
    assert lines == paragraph_lines(text, writer.body, WIDTH)
    assert lines[0].startswith("peace x") and lines[-1].endswith(" keeping")
    assert "".join(lines).replace(" ", "") == text.replace(" ", "")
    assert len(lines) >= 3


def test_a_newline_always_starts_a_line_and_blank_text_has_none(writer: _Writer) -> None:
    assert writer.wrapped("one\ntwo words\n\nthree", writer.body, WIDTH) == [
        "one",
        "two words",
        "",
        "three",
    ]
    assert writer.wrapped(" \t ", writer.body, WIDTH) == []


class Document:
    """Stands for a PDF document, which fonts keep their per-document subsets by."""


def test_text_is_encoded_to_the_bytes_reportlab_would_write() -> None:
    pdf_fonts()
    ours = getFont(BASE)
    theirs = TTFont("PrepmeetSansReference", ours.face.filename)
    doc_ours, doc_theirs = Document(), Document()
    texts = ["plain text", "ß and Ωmega", "no\xa0break", "", "日本", "plain text again", "ß"]
    for text in texts * 2:
        assert ours.splitString(text, doc_ours) == theirs.splitString(text, doc_theirs), text
    other = Document()  # another document has subsets of its own
    assert ours.splitString("Ωmega", other) == theirs.splitString("Ωmega", Document())


def recommendation(theme: int, n: int, title: str, text: str) -> dict[str, Any]:
    return {
        "number": f"{theme}.{n}",
        "proposal_id": f"2b7e1c40-0000-4000-8000-{theme:04d}{n:08d}",
        "title": title,
        "text": text,
        "proposer": {"name": "Ayesha Khan", "delegation": "Pakistan"},
        "endorsements": [],
        "approved_by": "Amb. Farah Qureshi",
        "approved_at": "2025-04-16T10:00:00Z",
        "merged_from": [],
    }


def layout_document(themes: list[dict[str, Any]]) -> dict[str, Any]:
    """A sealed open document of a meeting called Layout, with these themes."""
    meeting = {"id": "9a1f3b52-5d0e-4c41-9f7a-3c2b1d0e6f01", "title": "Layout",
               "venue": "Islamabad", "starts_on": "2025-04-15", "ends_on": "2025-04-16",
               "hosts": ["Pakistan"], "ministerial": "berlin-2025"}  # fmt: skip
    return seal(
        {"meeting": meeting, "status": "open", "outcome_version": None, "position": 9,
         "themes": themes}
    )  # fmt: skip


def test_no_heading_starts_near_the_foot_of_a_page() -> None:
    """A recommendation's heading has 2 cm of the page left where it starts (its own space
    before included), a theme's heading 3 cm, however the recommendations before fall."""
    long = "Equip every mission with a common situational-awareness platform. " * 12
    themes = [
        {
            "number": t,
            "key": f"theme-{t}",
            "title": f"Theme {t}",
            "recommendations": [
                recommendation(t, n, f"Heading {t}.{n}", long[: (97 * t + 41 * n) % 800 + 20])
                for n in range(1, 4 + t % 5)
            ],
        }
        for t in range(1, 25)
    ]
    doc = layout_document(themes)
    reader = PdfReader(io.BytesIO(render(doc, "pdf")))
    found: dict[float, list[tuple[int, float]]] = {11: [], 14: []}
    for number, page in enumerate(reader.pages):

        def visit(text: str, cm: Any, tm: Any, font: Any, size: float, page: int = number) -> None:
            heading = "Heading" in text if size == 11 else text[:1].isdigit() and "Theme" in text
            if size in found and heading:
                found[size].append((page, cm[5] + tm[5]))

        page.extract_text(visitor_text=visit)
    recs = [r for t in themes for r in t["recommendations"]]
    assert len(found[11]) == len(recs)
    assert len(found[14]) == len(themes)
    assert len(reader.pages) > 5
    for size, room in ((11, 2 * CENTIMETRE - 9), (14, 3 * CENTIMETRE - 14)):  # less space before
        lowest = min(y for _, y in found[size])  # a baseline: a font size below the top
        assert lowest >= MARGIN + room - size - 1, (size, lowest)
        pages = [page for page, _ in found[size]]
        assert pages == sorted(pages)


def runs(pdf: bytes) -> list[tuple[int, float, float, str]]:
    """Each text run of the pages above their footers: page, baseline, font size, text."""
    found: list[tuple[int, float, float, str]] = []
    for number, page in enumerate(PdfReader(io.BytesIO(pdf)).pages):

        def visit(text: str, cm: Any, tm: Any, font: Any, size: float, page: int = number) -> None:
            y = cm[5] + tm[5]
            if text.strip() and y > MARGIN:
                found.append((page, y, size, text.strip()))

        page.extract_text(visitor_text=visit)
    return found


def test_no_heading_is_left_at_the_foot_of_a_page_without_what_it_heads() -> None:
    """However long the theme before it, a theme's heading is on the page of its first
    recommendation's heading, and a recommendation's heading has 2 cm of the page left
    where it starts (its 9 pt of space before included) and its wording on the same page."""
    word = "peacekeeping "
    for lines, extra in [(n, e) for n in range(30, 62) for e in (0, 2)]:
        first = [recommendation(1, 1, "Heading 1.1", word * 8 * lines)]
        first += [recommendation(1, n, f"Heading 1.{n}", "Short.") for n in range(2, 2 + extra)]
        themes = [
            {"number": 1, "key": "one", "title": "Theme 1", "recommendations": first},
            {"number": 2, "key": "two", "title": "Theme 2",
             "recommendations": [recommendation(2, 1, "Heading 2.1", "The wording of 2.1.")]},
        ]  # fmt: skip
        doc = layout_document(themes)
        found = runs(render(doc, "pdf"))
        page_of = {text: page for page, _, size, text in found if size in (11, 14)}
        assert page_of["2. Theme 2"] == page_of["2.1 Heading 2.1"], (lines, extra)
        for index, (page, y, size, text) in enumerate(found):
            if size == 11 and "Heading" in text:  # 2 cm left, and the wording on the page
                assert y >= MARGIN + 2 * CENTIMETRE - 9 - 11 - 1, (lines, extra, text, y)
                assert found[index + 1][0] == page and found[index + 1][2] == 10, (lines, text)


def test_soft_hyphens_and_zero_width_spaces_are_break_points_not_glyphs() -> None:
    soft = "peace\xadkeeping " * 40
    zero = "10\xa0000 troops\n" + "\u200b".join(["peacekeeping"] * 60)
    doc = layout_document([{"number": 1, "key": "one", "title": "Theme 1", "recommendations": [
        recommendation(1, 1, "Soft", soft), recommendation(1, 2, "Zero", zero)]}])  # fmt: skip
    lines = [text for _, _, size, text in runs(render(doc, "pdf")) if size == 10]
    assert lines and not any("\xad" in line for line in lines)
    assert sum(line.count("peacekeeping") for line in lines) >= 40 + 60 - 12  # some are cut
    assert not any(line.endswith("peac") for line in lines)  # not cut inside a word
