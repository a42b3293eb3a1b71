"""A self-contained HTML page: inline CSS (print included), no external resource of any kind.

User text is HTML-escaped and carries `dir="auto"`, so right-to-left text (Arabic, Urdu) is
laid out by the browser; a Content-Security-Policy forbids every fetch.
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape
from typing import Any

from .model import (
    ANNEX_TITLE,
    NO_RECOMMENDATIONS,
    Fact,
    Publication,
    Recommendation,
    publication,
)

_CSS = """
:root { color-scheme: light; --un-blue: #0a5a9c; --rule: #c9d3de; }
body { font-family: "Noto Sans", "Segoe UI", Arial, sans-serif; line-height: 1.5;
       max-width: 52rem; margin: 2rem auto; padding: 0 1rem; color: #1b1b1b; }
h1, h2, h3, h4 { color: var(--un-blue); line-height: 1.25; }
h1 { font-size: 1.8rem; margin-bottom: .25rem; }
.subtitle { margin-top: 0; color: #4a4a4a; font-style: italic; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem;
           border-top: 2px solid var(--un-blue); border-bottom: 1px solid var(--rule);
           padding: .6rem 0; }
dl.facts dt { font-weight: 600; }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
.part { border-top: 3px double var(--un-blue); margin-top: 2.5rem; }
.theme { margin-top: 2rem; }
.recommendation h3, .recommendation h4 { margin-bottom: .3rem; }
.num { font-variant-numeric: tabular-nums; }
.text { white-space: pre-line; margin-top: 0; }
.empty { color: #5a5a5a; font-style: italic; }
table.annex { border-collapse: collapse; width: 100%; font-size: .85rem; }
table.annex th, table.annex td { border: 1px solid var(--rule); padding: .3rem .4rem;
                                 text-align: start; vertical-align: top; }
table.annex td { overflow-wrap: anywhere; }
footer { margin-top: 2rem; font-size: .8rem; color: #5a5a5a; overflow-wrap: anywhere; }
@media print {
  body { max-width: none; margin: 0; font-size: 10.5pt; }
  @page { size: A4; margin: 2cm; }
  h2, h3, h4 { break-after: avoid; }
  .recommendation, table.annex tr { break-inside: avoid; }
  .part { break-before: page; }
  thead { display: table-header-group; }
}
""".strip()


def _text(tag: str, value: str, attrs: str = "") -> str:
    return f'<{tag}{attrs} dir="auto">{escape(value)}</{tag}>'


def _facts(facts: tuple[Fact, ...]) -> str:
    rows = "".join(f"<dt>{escape(k)}</dt>{_text('dd', v)}" for k, v in facts)
    return f'<dl class="facts">{rows}</dl>'


def _heading(level: int, number: str, title: str) -> str:
    number_span = f'<span class="num">{escape(number)}</span>'
    return f"<h{level}>{number_span} {_text('span', title)}</h{level}>"


def _annex(level: int, recommendations: tuple[Recommendation, ...]) -> list[str]:
    out = [f'<section class="annex"><h{level}>{escape(ANNEX_TITLE)}</h{level}>']
    if recommendations:
        labels = [label for label, _ in recommendations[0].provenance]
        head = "".join(f'<th scope="col">{escape(label)}</th>' for label in ["No.", *labels])
        out.append(f'<table class="annex"><thead><tr>{head}</tr></thead><tbody>')
        for rec in recommendations:
            cells = "".join(_text("td", value) for _, value in rec.provenance)
            out.append(f'<tr><th scope="row">{escape(rec.number)}</th>{cells}</tr>')
        out.append("</tbody></table>")
    else:
        out.append(f'<p class="empty">{escape(NO_RECOMMENDATIONS)}</p>')
    out.append("</section>")
    return out


def write_html(pub: Publication) -> bytes:
    level = 3 if pub.compiled else 2
    out = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(pub.title)}</title>",
        f"<style>\n{_CSS}\n</style>",
        "</head>",
        "<body>",
        "<header>",
        _text("h1", pub.title),
        f'<p class="subtitle">{escape(pub.subtitle)}</p>',
        _facts(pub.facts),
        "</header>",
        "<main>",
    ]
    for index, part in enumerate(pub.parts, start=1):
        if part.heading:
            out += [f'<section class="part" id="part-{index}">', _text("h2", part.heading)]
            out.append(_facts(part.facts))
        for theme in part.themes:
            out.append(f'<section class="theme" id="theme-{index}-{escape(theme.number)}">')
            out.append(_heading(level, f"{theme.number}.", theme.title))
            if not theme.recommendations:
                out.append(f'<p class="empty">{escape(NO_RECOMMENDATIONS)}</p>')
            for rec in theme.recommendations:
                out.append('<article class="recommendation">')
                out.append(_heading(level + 1, rec.number, rec.title))
                out.append(_text("p", rec.text, ' class="text"'))
                out.append("</article>")
            out.append("</section>")
        out += _annex(level, part.recommendations)
        if part.heading:
            out.append("</section>")
    out += ["</main>", f"<footer>SHA-256 {escape(pub.sha256)}</footer>", "</body>", "</html>"]
    return ("\n".join(out) + "\n").encode()


def render_html(doc: Mapping[str, Any]) -> bytes:
    return write_html(publication(doc))
