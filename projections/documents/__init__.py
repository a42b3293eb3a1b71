"""The compiled document: canonical JSON, its seal, and its renderings in every format.

Renderers are pure: the same document gives the same bytes, in every process, and a render
reads no file and opens no connection once `preload()` has run (it runs on first use).
"""

from __future__ import annotations

from .as_csv import render_csv
from .as_docx import docx_template, render_docx
from .as_html import render_html
from .as_markdown import render_markdown
from .as_pdf import render_pdf
from .canonical import canonical_bytes, json_bytes, seal
from .fonts import pdf_fonts
from .formats import FORMATS, Format, UnknownFormat, render, render_ministerial


def preload() -> None:
    """Read the fonts and the Word template now (each is read once per process)."""
    pdf_fonts()
    docx_template()


__all__ = [
    "FORMATS",
    "Format",
    "UnknownFormat",
    "canonical_bytes",
    "json_bytes",
    "preload",
    "render",
    "render_csv",
    "render_docx",
    "render_html",
    "render_markdown",
    "render_ministerial",
    "render_pdf",
    "seal",
]
