"""PDF through reportlab platypus: A4, fonts embedded, byte-identical for the same document.

Text that is all in the base font and has no right-to-left script (nearly all of it) is
laid out here rather than by platypus's Paragraph: broken into lines as Paragraph breaks
it, and stacked in columns (`_Column`) that split across pages, so that a document of a
thousand recommendations is a few dozen flowables, not thousands. Other text goes through
Paragraph, as described below.

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
from bisect import bisect_right
from collections.abc import Iterator, Mapping
from itertools import accumulate, groupby, repeat
from operator import add
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
from reportlab.pdfgen.textobject import PDFTextObject
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
from reportlab.platypus.paragraph import split as split_words  # type: ignore[attr-defined]

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
HEADING_ROOM = 2 * cm
"""Page left below a heading for it to start there, for what follows it: a recommendation's
heading has its wording, a theme's heading its first recommendation's heading."""

_PARAGRAPH_ONLY = re.compile("[\u00ad\u200b]")
"""Soft hyphens and zero-width spaces, which Paragraph breaks at and does not draw."""

_BIDI = re.compile(
    "[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufefc\U00010800-\U00010fff\U0001e800-\U0001efff]"
)


class _Text(Flowable):
    """Plain left-to-right text in one font, broken into lines by `_Writer.wrapped` and drawn
    as one text object: what a Paragraph does with such text, without parsing markup. Laid
    out like one (first baseline a font size below the top, no single line left at the foot
    of a frame), it splits between lines."""

    def __init__(
        self, writer: _Writer, text: str, style: ParagraphStyle, lines: list[str] | None = None
    ) -> None:
        super().__init__()
        self.writer, self.text, self.style = writer, text, style
        self.spaceBefore, self.spaceAfter = style.spaceBefore, style.spaceAfter
        self.first = True
        self.lines = lines
        self.laid_out_for: float | None = -1.0 if lines is None else None  # None: lines given

    def wrap(self, availWidth: float, availHeight: float) -> tuple[float, float]:
        if self.laid_out_for is not None and self.laid_out_for != availWidth:
            self.lines = self.writer.wrapped(self.text, self.style, availWidth)
            self.laid_out_for = availWidth
        self.width = availWidth
        self.height = len(self.lines or ()) * self.style.leading
        return self.width, self.height

    def split(self, availWidth: float, availHeight: float) -> list[Flowable]:
        return list(self.parts(availWidth, availHeight))

    def parts(self, availWidth: float, availHeight: float) -> list[_Text]:
        """This block split between lines to fit `availHeight` (itself when it fits, none
        when not even two lines fit)."""
        self.wrap(availWidth, availHeight)
        lines = self.lines or []
        fits = int(availHeight / self.style.leading)
        if fits <= 1:
            return []
        if fits >= len(lines):
            return [self]
        head = _Text(self.writer, self.text, self.style, lines[:fits])
        head.first, head.spaceAfter = self.first, 0
        tail = _Text(self.writer, self.text, self.style, lines[fits:])
        tail.first, tail.spaceBefore = False, 0
        return [head, tail]

    def draw(self) -> None:
        style = self.style
        text = self.canv.beginText()
        text.setFont(style.fontName, style.fontSize, style.leading)
        text.setFillColor(style.textColor)
        self.text_lines(text, self.height)
        self.canv.drawText(text)

    def text_lines(self, text: PDFTextObject, top: float) -> None:
        """The lines into a text object set in this style's font, `top` the block's top."""
        style = self.style
        lines = self.lines or []
        baseline = top - style.fontSize
        if self.first and style.firstLineIndent and lines:
            text.setTextOrigin(style.leftIndent + style.firstLineIndent, baseline)
            text.textLine(lines[0])
            baseline, lines = baseline - style.leading, lines[1:]
        text.setTextOrigin(style.leftIndent, baseline)
        for line in lines:
            text.textLine(line)


class _Column(Flowable):
    """Blocks of plain text stacked as a frame stacks paragraphs, drawn as one text object.
    The gap between two blocks is the larger of the space after the one and before the
    other; a block with room set is not started closer than that to the foot of the frame,
    and its space before adds to the space after the block above (both what a CondPageBreak
    before it does). It splits between blocks, or within a block between its lines."""

    def __init__(self, blocks: list[tuple[_Text, float]]) -> None:
        super().__init__()
        self.blocks = blocks
        first, last = blocks[0][0], blocks[-1][0]
        self.spaceBefore, self.spaceAfter = first.spaceBefore, last.spaceAfter
        self.tops: list[float] = []

    def _fit(self, width: float, height: float) -> int | None:
        """Lay the blocks out from the top down, each block's top in `tops`, as far as
        `height` allows: the first block that does not fit whole (too tall, or too close
        to the foot for its room), or None when they all fit."""
        used, self.tops = 0.0, []
        previous: _Text | None = None
        for index, (block, room) in enumerate(self.blocks):
            block.wrap(width, height)
            if previous is not None:
                if room and height - used - previous.spaceAfter < room:
                    return index
                after = previous.spaceAfter
                used += after + block.spaceBefore if room else max(block.spaceBefore, after)
            elif room and height + block.spaceBefore < room:  # the frame took the space off
                return index
            if used + block.height > height:
                self.tops.append(used)
                return index
            self.tops.append(used)
            used += block.height
            previous = block
        self.height = used
        return None

    def wrap(self, availWidth: float, availHeight: float) -> tuple[float, float]:
        self.width = availWidth
        if self._fit(availWidth, availHeight) is not None:
            self.height = availHeight + 1  # does not fit: have it split
        return self.width, self.height

    def split(self, availWidth: float, availHeight: float) -> list[Flowable]:
        stop = self._fit(availWidth, availHeight)
        if stop is None:
            return [self]
        head, tail = self.blocks[:stop], self.blocks[stop:]
        parts: list[_Text] = []
        if len(self.tops) > stop:  # the block is too tall: split it between lines
            parts = self.blocks[stop][0].parts(availWidth, availHeight - self.tops[stop])
        if len(parts) == 2:
            head = [*head, (parts[0], 0.0)]
            tail = [(parts[1], 0.0), *tail[1:]]
        while head and head[-1][1]:  # a heading does not end a page without what it heads
            tail.insert(0, head.pop())
        if not head:
            return []
        return [_Column(head), _Column(tail)]

    def draw(self) -> None:
        text = self.canv.beginText()
        font: tuple[str, float, float] | None = None
        color = None
        for (block, _), top in zip(self.blocks, self.tops, strict=True):
            style = block.style
            if (style.fontName, style.fontSize, style.leading) != font:
                font = (style.fontName, style.fontSize, style.leading)
                text.setFont(*font)
            if style.textColor != color:
                color = style.textColor
                text.setFillColor(color)
            block.text_lines(text, self.height - top)
        self.canv.drawText(text)


class _Heading(Paragraph):
    """A paragraph that is also an entry of the PDF's outline (bookmarks)."""

    def __init__(self, markup: str, style: ParagraphStyle, outline: tuple[str, int]) -> None:
        super().__init__(markup, style)
        self.outline = outline


class _Writer:
    def __init__(self, fonts: FontSet) -> None:
        self.fonts = fonts
        self.widths: dict[tuple[str, float], dict[str, float]] = {}
        base = fonts.base

        def style(name: str, size: float, **kw: Any) -> ParagraphStyle:
            kw.setdefault("leading", size * 1.3)
            return ParagraphStyle(name, fontName=base, fontSize=size, **kw)

        self.title = style("title", 20, textColor=UN_BLUE, spaceAfter=4)
        self.subtitle = style("subtitle", 11, textColor=GREY, spaceAfter=10)
        self.label = style("label", 8.5, textColor=GREY)
        self.value = style("value", 8.5)
        self.part = style("part", 17, textColor=UN_BLUE, spaceBefore=18, spaceAfter=6)
        self.theme = style("theme", 14, textColor=UN_BLUE, spaceBefore=14, spaceAfter=6)
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
    ) -> Flowable:
        plain = not _BIDI.search(text) and not _PARAGRAPH_ONLY.search(text)
        if plain and not self.fonts.foreign.search(text):
            return _Text(self, text, style)
        inner = width - style.leftIndent - style.rightIndent
        markup, right = self.lines(text, style.fontSize, inner, rtl)
        return Paragraph(markup, _right_aligned(style) if right else style)

    def heading(self, text: str, style: ParagraphStyle, level: int, rtl: bool | None) -> Paragraph:
        markup, right = self.lines(text, style.fontSize, WIDTH, rtl)
        return _Heading(markup, _right_aligned(style) if right else style, (text, level))

    def recommendation(self, rec: Recommendation) -> list[tuple[Flowable, float]]:
        """Heading and wording, the heading kept 2 cm off the foot of a page."""
        heading = self.para(rec.heading, self.rec, rtl=False)
        return [(heading, HEADING_ROOM), (self.para(rec.text or "—", self.body), 0.0)]

    def provenance(self, rec: Recommendation) -> Flowable:
        facts = " · ".join(f"{label}: {value}" for label, value in rec.provenance)
        return self.para(f"{rec.heading} — {facts}", self.annex, rtl=False)

    @staticmethod
    def kept(heading: Paragraph) -> list[Flowable]:
        """A heading after a conditional break, so that it starts only where it and the
        first heading of what follows fit, with the room that one needs."""
        style = heading.style
        _, height = heading.wrap(WIDTH, PAGE_HEIGHT)
        room = style.spaceBefore + height + style.spaceAfter + HEADING_ROOM
        return [CondPageBreak(room), heading]

    @staticmethod
    def stacked(items: list[tuple[Flowable, float]]) -> list[Flowable]:
        """Flowables, each with the room it needs below it to start (0 for none), with runs
        of plain text gathered into columns: laying out a few columns costs far less than
        laying out thousands of paragraphs one by one."""
        out: list[Flowable] = []
        run: list[tuple[_Text, float]] = []
        for flowable, room in items:
            if isinstance(flowable, _Text):
                run.append((flowable, room))
                continue
            out += _Writer._column(run)
            run = []
            out += [CondPageBreak(room), flowable] if room else [flowable]
        return out + _Writer._column(run)

    @staticmethod
    def _column(run: list[tuple[_Text, float]]) -> list[Flowable]:
        if not run:
            return []
        room = run[0][1]
        return [CondPageBreak(room), _Column(run)] if room else [_Column(run)]

    def wrapped(self, text: str, style: ParagraphStyle, width: float) -> list[str]:
        """Plain text (every character in the base font) broken into lines as a Paragraph
        breaks it: words split at white space other than no-break spaces, each line filled
        greedily (allowing the style's space shrinkage), a newline always breaking, and a
        word longer than its line cut, its first piece finishing the line it starts on."""
        if not text.strip():
            return []
        font, size = style.fontName, style.fontSize
        measured = self.widths.setdefault((font, size), {})
        inner = width - style.leftIndent - style.rightIndent
        lines: list[str] = []
        limit = inner - style.firstLineIndent
        for logical in text.split("\n"):
            words = [word for word in split_words(logical) if word]
            if not words:
                lines.append("")
            while words:
                words = self._fill(lines, words, font, size, measured, limit, inner, style)
                limit = inner
            limit = inner
        return lines

    def _fill(
        self,
        lines: list[str],
        words: list[str],
        font: str,
        size: float,
        measured: dict[str, float],
        limit: float,
        inner: float,
        style: ParagraphStyle,
    ) -> list[str]:
        """Lines of `words` appended to `lines`, the first `limit` wide and the others `inner`;
        the words left when a long word was cut (its last piece first), else none.

        A line's last word is found by bisection over the running sum of word and space
        widths, not by measuring word after word."""
        for word in set(words).difference(measured):
            measured[word] = stringWidth(word, font, size)
        space = measured.get(" ") or measured.setdefault(" ", stringWidth(" ", font, size))
        shrink = style.spaceShrinkage * space
        sizes = list(map(measured.__getitem__, words))
        starts = list(accumulate(map(add, sizes, repeat(space)), initial=0.0))
        ends = list(map(add, starts, sizes))
        first, count = 0, len(words)
        moved = False  # whether words[first] did not fit on the line above (and was not cut)
        while first < count:
            base = starts[first]
            last = bisect_right(ends, base + limit, first) - 1
            while last + 1 < count and ends[last + 1] - base <= limit + shrink * (last + 1 - first):
                last += 1
            if last < first and moved:  # not longer than the line above: it stays whole
                lines.append(words[first])
                first, limit, moved = first + 1, inner, False
                continue
            if last < first:  # the line's first word is longer than the line
                pieces = self._cut(words[first], font, size, measured, 0.0, limit, inner)
                if len(pieces) > 1:
                    lines += pieces[:-1]
                    return [pieces[-1], *words[first + 1 :]]
                lines.append(words[first])
                first, limit = first + 1, inner
                continue
            following = last + 1
            if following < count and sizes[following] > limit:
                offset = ends[last] - base + space
                pieces = self._cut(words[following], font, size, measured, offset, limit, inner)
                if len(pieces) > 1:  # its first piece ends this line
                    head = words[first:following] + ([pieces[0]] if pieces[0] else [])
                    lines.append(" ".join(head))
                    lines += pieces[1:-1]
                    return [pieces[-1], *words[following + 1 :]]
            lines.append(" ".join(words[first:following]))
            first, limit, moved = following, inner, True
        return []

    @staticmethod
    def _cut(
        word: str,
        font: str,
        size: float,
        measured: dict[str, float],
        offset: float,
        first: float,
        rest: float,
    ) -> list[str]:
        """A word cut into pieces: the first fills a line of `first` from `offset`, each
        other a line of `rest` (the last may be shorter); a character wider than a line is
        never left alone on the line before it."""
        pieces: list[str] = []
        piece, used, limit = "", offset, first
        for char in word:
            char_width = measured.get(char)
            if char_width is None:
                char_width = measured[char] = stringWidth(char, font, size)
            if used + char_width > limit and (piece or char_width <= rest):
                pieces.append(piece)
                piece, used, limit = "", 0.0, rest
            piece += char
            used += char_width
        pieces.append(piece)
        return pieces

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
                story += self.kept(self.heading(theme.heading, self.theme, level, False))
                if not theme.recommendations:
                    story.append(self.para(NO_RECOMMENDATIONS, self.empty))
                items = [item for rec in theme.recommendations for item in self.recommendation(rec)]
                story += self.stacked(items)
            story += [Spacer(0, 6), *self.kept(self.heading(ANNEX_TITLE, self.theme, level, False))]
            annex = [(self.provenance(rec), 0.0) for rec in part.recommendations]
            story += self.stacked(annex) or [self.para(NO_RECOMMENDATIONS, self.empty)]
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
