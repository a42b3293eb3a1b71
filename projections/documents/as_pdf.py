"""PDF through reportlab platypus: A4, fonts embedded, byte-identical for the same document.

User text is escaped for reportlab's paragraph markup (`&`, `<`, `>`), so no tag, image or
link in it is ever interpreted: a render reads no file and opens no connection once the
fonts are registered (see `fonts`). Dates in the metadata come from the document's
`position_at` (a fixed epoch without it); `rl_config.invariant` fixes the rest.

Right-to-left text: reportlab lays out left to right only here (its own bidi needs `rlbidi`,
its shaping `uharfbuzz`; neither is used). A paragraph with Arabic-script or Hebrew text is
shaped with arabic-reshaper (contextual forms and lam-alef ligatures, as Unicode
presentation forms), broken into lines here in logical order, and each line reordered for
display with python-bidi (Unicode bidi algorithm, base direction from its first strong
character; right-to-left paragraphs are right-aligned). Limits: Urdu is set in Noto Sans
Arabic (Naskh), not Nastaliq; marks are placed by the font's advance widths, without
OpenType mark positioning; emoji are monochrome; text is not justified.
"""

from __future__ import annotations

import hashlib
import io
import re
import unicodedata
from collections.abc import Iterator, Mapping
from itertools import groupby
from typing import Any
from xml.sax.saxutils import escape

import arabic_reshaper
from bidi import get_display
from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import cm
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    CondPageBreak,
    Flowable,
    PageBreak,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from .fonts import FontSet, pdf_fonts
from .model import (
    ANNEX_TITLE,
    NO_RECOMMENDATIONS,
    Fact,
    Publication,
    Recommendation,
    is_rtl,
    publication,
)

PAGE_WIDTH, PAGE_HEIGHT = A4
MARGIN = 2 * cm
WIDTH = PAGE_WIDTH - 2 * MARGIN
LABEL_WIDTH = 3.4 * cm
UN_BLUE = colors.HexColor("#0a5a9c")
GREY = colors.HexColor("#555555")
TOTAL_PAGES_FORM = "prepmeetTotalPages"

_BIDI = re.compile(
    "[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufefc\U00010800-\U00010fff\U0001e800-\U0001efff]"
)


class _Heading(Paragraph):
    """A paragraph that is also an entry of the PDF's outline (bookmarks)."""

    def __init__(self, markup: str, style: ParagraphStyle, outline: tuple[str, int]) -> None:
        super().__init__(markup, style)
        self.outline = outline


class _Writer:
    def __init__(self, fonts: FontSet) -> None:
        self.fonts = fonts
        base = fonts.base

        def style(name: str, size: float, **kw: Any) -> ParagraphStyle:
            kw.setdefault("leading", size * 1.3)
            return ParagraphStyle(name, fontName=base, fontSize=size, **kw)

        self.title = style("title", 20, textColor=UN_BLUE, spaceAfter=4)
        self.subtitle = style("subtitle", 11, textColor=GREY, spaceAfter=10)
        self.label = style("label", 8.5, textColor=GREY)
        self.value = style("value", 8.5)
        self.part = style("part", 17, textColor=UN_BLUE, spaceBefore=18, spaceAfter=6)
        self.theme = style("theme", 14, textColor=UN_BLUE, spaceBefore=14, spaceAfter=6,
                           keepWithNext=1)  # fmt: skip
        self.rec = style("rec", 11, leading=15, spaceBefore=9, spaceAfter=1)
        self.body = style("body", 10, leading=14)
        self.empty = style("empty", 10, textColor=GREY)
        self.annex = style("annex", 8.5, leftIndent=12, firstLineIndent=-12, spaceBefore=5,
                           textColor=GREY)  # fmt: skip

    def runs(self, text: str) -> Iterator[tuple[str, str]]:
        visible = (c for c in text if unicodedata.category(c) != "Cf" or self._covered(c))
        for font, chars in groupby(visible, key=self.fonts.font_for):
            yield font, "".join(chars)

    def _covered(self, char: str) -> bool:
        return any(ord(char) in chars for _, chars in self.fonts.coverage)

    def markup(self, text: str) -> str:
        if not self.fonts.foreign.search(text):
            return escape(text).replace("\n", "<br/>")
        out = []
        for font, run in self.runs(text):
            piece = escape(run).replace("\n", "<br/>")
            out.append(piece if font == self.fonts.base else f'<font face="{font}">{piece}</font>')
        return "".join(out)

    def width(self, text: str, size: float) -> float:
        if not self.fonts.foreign.search(text):
            return stringWidth(text, self.fonts.base, size)
        return sum(stringWidth(run, font, size) for font, run in self.runs(text))

    def lines(self, text: str, size: float, width: float, rtl: bool | None) -> tuple[str, bool]:
        """Paragraph markup of user text, and whether it runs right to left (as given, else
        as its first strong character)."""
        if not _BIDI.search(text):
            return self.markup(text), False
        rtl = is_rtl(text) if rtl is None else rtl
        base_dir = "R" if rtl else "L"
        lines = [
            get_display(line, base_dir=base_dir)
            for logical in text.split("\n")
            for line in self._break(arabic_reshaper.reshape(logical), size, width - 1)
        ]
        return "<br/>".join(self.markup(line) for line in lines), rtl

    def para(
        self, text: str, style: ParagraphStyle, width: float = WIDTH, rtl: bool | None = None
    ) -> Paragraph:
        inner = width - style.leftIndent - style.rightIndent
        markup, right = self.lines(text, style.fontSize, inner, rtl)
        return Paragraph(markup, _right_aligned(style) if right else style)

    def heading(self, text: str, style: ParagraphStyle, level: int, rtl: bool | None) -> Paragraph:
        markup, right = self.lines(text, style.fontSize, WIDTH, rtl)
        return _Heading(markup, _right_aligned(style) if right else style, (text, level))

    def recommendation(self, rec: Recommendation) -> list[Flowable]:
        """Heading and wording as two plain paragraphs (far faster to lay out than one with
        a line break), the heading kept off the foot of a page by a conditional break."""
        heading = self.para(rec.heading, self.rec, rtl=False)
        return [CondPageBreak(2 * cm), heading, self.para(rec.text or "—", self.body)]

    def provenance(self, rec: Recommendation) -> Paragraph:
        facts = " · ".join(f"{label}: {value}" for label, value in rec.provenance)
        return self.para(f"{rec.heading} — {facts}", self.annex, rtl=False)

    def _break(self, text: str, size: float, limit: float) -> list[str]:
        """Greedy line breaking in logical order, cutting a word longer than a line."""
        lines: list[str] = []
        words: list[str] = []
        used, space = 0.0, self.width(" ", size)
        for word in text.split(" "):
            width = self.width(word, size)
            if words and used + space + width > limit:
                lines.append(" ".join(words))
                words, used = [], 0.0
            while width > limit and len(word) > 1:
                cut = self._fitting(word, size, limit)
                lines.append(word[:cut])
                word = word[cut:]
                width = self.width(word, size)
            used = used + space + width if words else width
            words.append(word)
        lines.append(" ".join(words))
        return lines

    def _fitting(self, word: str, size: float, limit: float) -> int:
        used = 0.0
        for index, char in enumerate(word):
            used += self.width(char, size)
            if used > limit:
                return max(index, 1)
        return len(word)

    def facts(self, facts: tuple[Fact, ...]) -> Table:
        rows = [
            [
                self.para(label, self.label, LABEL_WIDTH),
                self.para(value, self.value, WIDTH - LABEL_WIDTH),
            ]
            for label, value in facts
        ]
        table = Table(rows, colWidths=[LABEL_WIDTH, WIDTH - LABEL_WIDTH], hAlign="LEFT")
        table.setStyle(TableStyle([
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("LINEABOVE", (0, 0), (-1, 0), 1.5, UN_BLUE),
            ("LINEBELOW", (0, -1), (-1, -1), 0.5, GREY),
            ("TOPPADDING", (0, 0), (-1, -1), 1.5),
            ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5),
            ("LEFTPADDING", (0, 0), (-1, -1), 0),
        ]))  # fmt: skip
        return table

    def story(self, pub: Publication) -> list[Flowable]:
        story: list[Flowable] = [
            self.heading(pub.title, self.title, 0, None),
            self.para(pub.subtitle, self.subtitle),
            self.facts(pub.facts),
        ]
        level = 2 if pub.compiled else 1
        for index, part in enumerate(pub.parts):
            if part.heading:
                story += [PageBreak()] if index else []
                story += [self.heading(part.heading, self.part, 1, False), self.facts(part.facts)]
            for theme in part.themes:
                story.append(self.heading(theme.heading, self.theme, level, False))
                if not theme.recommendations:
                    story.append(self.para(NO_RECOMMENDATIONS, self.empty))
                for rec in theme.recommendations:
                    story += self.recommendation(rec)
            story += [Spacer(0, 6), self.heading(ANNEX_TITLE, self.theme, level, False)]
            story += [self.provenance(rec) for rec in part.recommendations] or [
                self.para(NO_RECOMMENDATIONS, self.empty)
            ]
        return story


def _right_aligned(style: ParagraphStyle) -> ParagraphStyle:
    return ParagraphStyle(f"{style.name}-rtl", parent=style, alignment=TA_RIGHT)


class _Document(SimpleDocTemplate):
    outlines = 0

    def afterFlowable(self, flowable: Flowable) -> None:
        if isinstance(flowable, _Heading):
            title, level = flowable.outline
            self.outlines += 1
            key = f"outline-{self.outlines}"
            self.canv.bookmarkPage(key)
            self.canv.addOutlineEntry(title, key, level=level, closed=level > 0)


def _canvas_maker(font: str, stamp: str, seed: str) -> type[Canvas]:
    """A canvas whose dates are `stamp` and whose file identifier derives from `seed` (not from
    reportlab's clock, which `SOURCE_DATE_EPOCH` would otherwise set), with the page total."""

    class PrepmeetCanvas(Canvas):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.setDateFormatter(lambda *_: stamp)
            self._doc.signature = hashlib.md5(seed.encode(), usedforsecurity=False)  # type: ignore[attr-defined]

        def save(self) -> None:
            self.beginForm(TOTAL_PAGES_FORM, lowery=-5)
            self.setFont(font, 7.5)
            self.setFillColor(GREY)
            self.drawString(0, 0, str(self.getPageNumber() - 1))
            self.endForm()
            super().save()

    return PrepmeetCanvas


def write_pdf(pub: Publication) -> bytes:
    fonts = pdf_fonts()
    writer = _Writer(fonts)
    buffer = io.BytesIO()

    def footer(canvas: Canvas, doc: SimpleDocTemplate) -> None:
        canvas.saveState()
        canvas.setFont(fonts.base, 7.5)
        canvas.setFillColor(GREY)
        label = f"Page {doc.page} of "
        canvas.drawString(MARGIN, MARGIN / 2, label)
        canvas.drawRightString(PAGE_WIDTH - MARGIN, MARGIN / 2, f"SHA-256 {pub.sha256}")
        canvas.translate(MARGIN + stringWidth(label, fonts.base, 7.5), MARGIN / 2)
        canvas.doForm(TOTAL_PAGES_FORM)
        canvas.restoreState()

    document = _Document(
        buffer,
        pagesize=A4,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN,
        bottomMargin=MARGIN,
        title=pub.title,
        author=pub.author,
        subject=pub.subject,
        creator="prepmeet",
        keywords=[f"sha256:{pub.sha256}"],
        lang="en",
        invariant=1,
    )
    stamp = pub.created.strftime("D:%Y%m%d%H%M%S+00'00'")
    document.build(
        writer.story(pub),
        onFirstPage=footer,
        onLaterPages=footer,
        canvasmaker=_canvas_maker(fonts.base, stamp, f"{pub.sha256} {stamp}"),
    )
    return buffer.getvalue()


def render_pdf(doc: Mapping[str, Any]) -> bytes:
    return write_pdf(publication(doc))
