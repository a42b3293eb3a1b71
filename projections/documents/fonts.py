"""TrueType fonts for the PDF, read once from font packages and registered with reportlab.

In fallback order, each character set in the first font that has it:
- Noto Sans (Latin, Greek, Cyrillic): manimgx-fonts, SIL OFL 1.1;
- Noto Sans Arabic (Arabic, Urdu, Persian): manimgx-fonts, SIL OFL 1.1;
- WenQuanYi Micro Hei (Hangul, Chinese, Japanese): paperang-p2-fonts-cjk, Apache 2.0;
- Noto Sans Hebrew, Armenian, Georgian, Ethiopic; Noto Emoji (monochrome); Noto Sans Symbols:
  manimgx-fonts, SIL OFL 1.1.

A character no font has (the Indic, Thai or Myanmar scripts among others, which would need a
shaping engine to be set right) shows as an empty box. A missing font package only loses
its scripts; without Noto Sans the PDF falls back to Helvetica (Latin-1). The Noto fonts are
variable fonts that reportlab reads at their default instance (Regular): there is no bold,
so headings differ by size and colour. reportlab writes characters beyond U+FFFF (emoji)
into a font's ToUnicode map as bare code points; `pdf_fonts()` makes it write them as
UTF-16, as PDF requires, so that they can be copied and searched.

`Font` is reportlab's TTFont with a faster `splitString` for the common case (every
character of the string already given a code in the document's first subset): one
`str.translate` instead of a Python loop over the characters; the bytes are the same.
"""

from __future__ import annotations

import re
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from reportlab import rl_config
from reportlab.lib.fonts import addMapping
from reportlab.pdfbase import pdfmetrics, ttfonts
from reportlab.pdfbase.ttfonts import TTFont

BASE = "PrepmeetSans"
FALLBACK_BASE = "Helvetica"
_SOURCES = (
    (BASE, "manimgx_fonts", "NotoSans[wght].ttf", 0),
    ("PrepmeetArabic", "manimgx_fonts", "NotoSansArabic[wght].ttf", 0),
    ("PrepmeetHangul", "paperang_p2_fonts_cjk", "fonts/wqy-microhei.ttc", 0),
    ("PrepmeetHebrew", "manimgx_fonts", "NotoSansHebrew[wght].ttf", 0),
    ("PrepmeetArmenian", "manimgx_fonts", "NotoSansArmenian[wght].ttf", 0),
    ("PrepmeetGeorgian", "manimgx_fonts", "NotoSansGeorgian[wght].ttf", 0),
    ("PrepmeetEthiopic", "manimgx_fonts", "NotoSansEthiopic[wght].ttf", 0),
    ("PrepmeetEmoji", "manimgx_fonts", "NotoEmoji[wght].ttf", 0),
    ("PrepmeetSymbols", "manimgx_fonts", "NotoSansSymbols[wght].ttf", 0),
)


@dataclass(frozen=True)
class FontSet:
    """The registered fonts, in fallback order, each with the characters it has."""

    base: str
    coverage: tuple[tuple[str, frozenset[int]], ...]
    foreign: re.Pattern[str]
    """Matches a character that the base font lacks (tab and newline aside)."""

    def font_for(self, char: str) -> str:
        code = ord(char)
        for name, chars in self.coverage:
            if code in chars:
                return name
        return self.base


_ASTRAL_TARGET = re.compile(r"<([0-9A-F]{5,6})>$", re.MULTILINE)
_reportlab_cmap = ttfonts.makeToUnicodeCMap


def _utf16(match: re.Match[str]) -> str:
    return f"<{chr(int(match[1], 16)).encode('utf-16-be').hex().upper()}>"


def _to_unicode_cmap(fontname: str, subset: Sequence[int]) -> str:
    return _ASTRAL_TARGET.sub(_utf16, _reportlab_cmap(fontname, subset))


def _outside(chars: frozenset[int]) -> re.Pattern[str]:
    codes = sorted(chars)
    ranges, start = [], codes[0]
    for previous, code in zip(codes, [*codes[1:], -1], strict=True):
        if code != previous + 1:
            ranges.append(f"{re.escape(chr(start))}-{re.escape(chr(previous))}")
            start = code
    return re.compile(f"[^{''.join(ranges)}]")


class Font(TTFont):
    """A TrueType font that encodes text already seen in a document with one translate."""

    last: tuple[Callable[[], Any], Any] = (lambda: None, None)
    """The document of the last call (weakly) and its state: a shortcut past the weak
    dictionary, which costs more than the encoding itself."""

    def splitString(self, text: Any, doc: Any, encoding: str = "utf-8") -> list[tuple[int, bytes]]:
        last_doc, state = self.last
        if last_doc() is not doc:
            state = self.state.get(doc)
            if state is not None:
                self.last = (weakref.ref(doc), state)
        if state is not None and text and isinstance(text, str):
            known = self._first_subset(state)
            if known[1].issuperset(text):
                return [(0, text.translate(known[2]).encode("latin-1"))]
        result: list[tuple[int, bytes]] = super().splitString(text, doc, encoding)
        return result

    @staticmethod
    def _first_subset(state: Any) -> tuple[int, frozenset[str], dict[int, int]]:
        """The characters with a code in subset 0 and their codes, for the current
        assignments (rebuilt when characters were added since)."""
        assignments: dict[int, int] = state.assignments
        known: tuple[int, frozenset[str], dict[int, int]] | None = getattr(
            state, "prepmeet_first_subset", None
        )
        if known is None or known[0] != len(assignments):
            codes = {char: code for char, code in assignments.items() if code < 0x100}
            if 32 in codes:
                codes[0xA0] = codes[32]  # reportlab sets a no-break space as a space
            known = (len(assignments), frozenset(map(chr, codes)), codes)
            state.prepmeet_first_subset = known
        return known


_lock = threading.Lock()
_fonts: FontSet | None = None


def _load(name: str, package: str, filename: str, index: int) -> frozenset[int] | None:
    try:
        path = resources.files(package).joinpath(filename)
        font = Font(name, str(path), subfontIndex=index)
    except (ModuleNotFoundError, FileNotFoundError, OSError):
        return None
    pdfmetrics.registerFont(font)
    for bold in (0, 1):
        for italic in (0, 1):
            addMapping(name, bold, italic, name)
    return frozenset(font.face.charToGlyph)


def pdf_fonts() -> FontSet:
    """Register the fonts (first call only: reads the font files) and return them."""
    global _fonts
    with _lock:
        if _fonts is None:
            rl_config.invariant = 1
            ttfonts.makeToUnicodeCMap = _to_unicode_cmap
            coverage = []
            for name, package, filename, index in _SOURCES:
                chars = _load(name, package, filename, index)
                if chars is not None:
                    coverage.append((name, chars))
            base = BASE if coverage and coverage[0][0] == BASE else FALLBACK_BASE
            own = coverage[0][1] if base == BASE else frozenset(range(32, 127))
            _fonts = FontSet(base, tuple(coverage), _outside(own | {9, 10}))
        return _fonts
