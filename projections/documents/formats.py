"""The document formats: media type, file extension and renderer of each."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .as_csv import write_csv
from .as_docx import write_docx
from .as_html import write_html
from .as_markdown import write_markdown
from .as_pdf import write_pdf
from .canonical import json_bytes
from .model import Publication, compilation, publication

Document = Mapping[str, Any]


@dataclass(frozen=True)
class Format:
    key: str
    media_type: str
    extension: str
    write: Callable[[Publication], bytes] | None
    """Renders the shared model; None for JSON, which is the document itself."""

    def render(self, doc: Document) -> bytes:
        """One meeting's compiled document in this format."""
        return json_bytes(doc) if self.write is None else self.write(publication(doc))

    def render_ministerial(self, comp: Document) -> bytes:
        """A ministerial compilation in this format, each meeting a part."""
        return json_bytes(comp) if self.write is None else self.write(compilation(comp))


FORMATS: dict[str, Format] = {
    f.key: f
    for f in (
        Format("json", "application/json", "json", None),
        Format("md", "text/markdown; charset=utf-8", "md", write_markdown),
        Format("html", "text/html; charset=utf-8", "html", write_html),
        Format("pdf", "application/pdf", "pdf", write_pdf),
        Format(
            "docx",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "docx",
            write_docx,
        ),
        Format("csv", "text/csv; charset=utf-8", "csv", write_csv),
    )
}


class UnknownFormat(ValueError):
    def __init__(self, fmt: str) -> None:
        super().__init__(f"unknown document format {fmt!r}; known: {', '.join(FORMATS)}")
        self.fmt = fmt


def _format(fmt: str) -> Format:
    try:
        return FORMATS[fmt]
    except KeyError:
        raise UnknownFormat(fmt) from None


def render(doc: Document, fmt: str) -> bytes:
    """One meeting's compiled document as `fmt` (a key of FORMATS)."""
    return _format(fmt).render(doc)


def render_ministerial(comp: Document, fmt: str) -> bytes:
    """A ministerial compilation `{ministerial, meetings, sha256}` as `fmt`."""
    return _format(fmt).render_ministerial(comp)
