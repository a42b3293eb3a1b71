"""Word (DOCX) through python-docx, byte-identical for the same document.

Themes are `Heading 1` and recommendations `Heading 2` (one level deeper each in a ministerial
compilation, whose meetings are `Heading 1`), so Word's navigation pane lists them. The core
properties take their dates from the document, and the saved package is rewritten with one
fixed timestamp and a fixed order for its entries. Word lays out right-to-left text itself;
paragraphs whose first strong character is right-to-left are marked `w:bidi`.
"""

from __future__ import annotations

import io
import threading
import zipfile
from collections.abc import Mapping
from importlib import resources
from typing import Any

from docx import Document
from docx.document import Document as DocxDocument
from docx.opc.constants import RELATIONSHIP_TYPE as RT
from docx.oxml import OxmlElement
from docx.shared import Pt, RGBColor
from docx.text.paragraph import Paragraph
from docx.text.run import Run

from .model import ANNEX_TITLE, NO_RECOMMENDATIONS, Fact, Publication, is_rtl, publication

ZIP_TIME = (1980, 1, 1, 0, 0, 0)
GREY = RGBColor(0x55, 0x55, 0x55)

_lock = threading.Lock()
_template: bytes | None = None


def docx_template() -> bytes:
    """python-docx's default template, read once: a render reads no file after the first."""
    global _template
    with _lock:
        if _template is None:
            _template = resources.files("docx").joinpath("templates/default.docx").read_bytes()
        return _template


def _normalised(package: bytes) -> bytes:
    """The same zip with a fixed timestamp, attributes and order for every entry."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(package)) as src, zipfile.ZipFile(out, "w") as dst:
        names = sorted(src.namelist(), key=lambda n: (n != "[Content_Types].xml", n))
        for name in names:
            info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 0
            info.external_attr = 0
            dst.writestr(info, src.read(name), compresslevel=6)
    return out.getvalue()


def _run(paragraph: Paragraph, text: str) -> Run:
    """A run of `text`; python-docx's own setter reads text a character at a time, needed only
    for the tabs and line breaks it turns into elements."""
    run = paragraph.add_run()
    if "\n" in text or "\t" in text:
        run.text = text
    else:
        run._r.add_t(text)
    return run


class _Writer:
    """Adds paragraphs with style ids resolved once (python-docx looks a style up per call)."""

    def __init__(self, document: DocxDocument, compiled: bool) -> None:
        styles = document.styles
        self.body = document.add_paragraph
        self.title, self.subtitle = styles["Title"].style_id, styles["Subtitle"].style_id
        levels = [styles[f"Heading {n}"].style_id for n in (1, 2, 3)]
        self.part_style = levels[0]
        self.theme_style, self.rec_style = levels[1:] if compiled else levels[:2]

    def para(self, text: str = "", style: str | None = None, auto_dir: bool = True) -> Paragraph:
        """A paragraph, right-to-left when `auto_dir` and its first strong character is."""
        paragraph = self.body()
        if text:
            _run(paragraph, text)
        if style is not None:
            paragraph._p.style = style
        if auto_dir and is_rtl(text):
            paragraph._p.get_or_add_pPr().append(OxmlElement("w:bidi"))
        return paragraph

    def facts(self, facts: tuple[Fact, ...]) -> None:
        for label, value in facts:
            paragraph = self.para()
            paragraph.paragraph_format.space_after = Pt(0)
            _run(paragraph, f"{label}: ").bold = True
            _run(paragraph, value)

    def write(self, pub: Publication) -> None:
        self.para(pub.title, self.title)
        self.para(pub.subtitle, self.subtitle)
        self.facts(pub.facts)
        for index, part in enumerate(pub.parts):
            if part.heading:
                heading = self.para(part.heading, self.part_style, auto_dir=False)
                heading.paragraph_format.page_break_before = index > 0
                self.facts(part.facts)
            for theme in part.themes:
                self.para(theme.heading, self.theme_style, auto_dir=False)
                if not theme.recommendations:
                    _run(self.para(), NO_RECOMMENDATIONS).italic = True
                for rec in theme.recommendations:
                    self.para(rec.heading, self.rec_style, auto_dir=False)
                    self.para(rec.text)
            self.para(ANNEX_TITLE, self.theme_style, auto_dir=False)
            if not part.recommendations:
                _run(self.para(), NO_RECOMMENDATIONS).italic = True
            for rec in part.recommendations:
                paragraph = self.para()
                _run(paragraph, rec.heading).bold = True
                _run(paragraph, "".join(f"\n{k}: {v}" for k, v in rec.provenance))


def write_docx(pub: Publication) -> bytes:
    document = Document(io.BytesIO(docx_template()))
    package = document.part.package
    for rel_id, rel in list(package.rels.items()):
        if rel.reltype == RT.THUMBNAIL:
            del package.rels[rel_id]
    props = document.core_properties
    props.title = pub.title
    props.subject = pub.subject
    props.author = pub.author
    props.last_modified_by = pub.author
    props.comments = f"SHA-256 {pub.sha256}"
    props.keywords = f"sha256:{pub.sha256}"
    props.category = "Recommendations"
    props.language = "en"
    props.revision = 1
    props.created = props.modified = pub.created.replace(tzinfo=None)
    _Writer(document, pub.compiled).write(pub)
    out = io.BytesIO()
    document.save(out)
    return _normalised(out.getvalue())


def render_docx(doc: Mapping[str, Any]) -> bytes:
    return write_docx(publication(doc))
