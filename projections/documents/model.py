"""The compiled document as every renderer sees it: text cleaned and labels worded once.

A `Publication` is either one meeting's compiled document (one untitled part) or a
ministerial compilation (one titled part per meeting). Renderers only escape its text for
their format; what is shown, in which order and with which words is decided here.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from .canonical import digest

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
NO_RECOMMENDATIONS = "No recommendations."
DASH = "\u2013"
ANNEX_TITLE = "Annex: provenance of the recommendations"

_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")

Fact = tuple[str, str]


def clean(value: object) -> str:
    """Text with line ends made `\\n` and every other control character removed (tab kept)."""
    text = "" if value is None else str(value)
    return _UNSAFE.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


def one_line(value: object) -> str:
    """Cleaned text on one line, runs of white space made one space."""
    return " ".join(clean(value).split())


def is_rtl(text: str) -> bool:
    """Whether the first strongly directional character is right-to-left (as `dir=auto`)."""
    for char in text:
        kind = unicodedata.bidirectional(char)
        if kind in ("R", "AL"):
            return True
        if kind == "L":
            return False
    return False


def parse_time(value: object) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def time_label(value: object) -> str:
    moment = parse_time(value)
    if moment is None:
        return one_line(value)
    clock = f"{moment:%H:%M}" if moment.second == 0 else f"{moment:%H:%M:%S}"
    return f"{moment.day} {MONTHS[moment.month - 1]} {moment.year}, {clock} UTC"


def dates_label(starts_on: object, ends_on: object) -> str:
    try:
        start, end = date.fromisoformat(str(starts_on)), date.fromisoformat(str(ends_on))
    except ValueError:
        return f" {DASH} ".join(one_line(v) for v in (starts_on, ends_on) if v)
    last = f"{end.day} {MONTHS[end.month - 1]} {end.year}"
    if start == end:
        return last
    if (start.year, start.month) == (end.year, end.month):
        return f"{start.day}{DASH}{last}"
    if start.year == end.year:
        return f"{start.day} {MONTHS[start.month - 1]} {DASH} {last}"
    return f"{start.day} {MONTHS[start.month - 1]} {start.year} {DASH} {last}"


def _names(values: object) -> tuple[str, ...]:
    items = values if isinstance(values, Sequence) and not isinstance(values, str) else ()
    return tuple(name for name in (one_line(v) for v in items) if name)


@dataclass(frozen=True)
class Recommendation:
    number: str
    proposal_id: str
    title: str
    text: str
    proposer: str
    delegation: str
    endorsements: tuple[str, ...]
    approved_by: str
    approved_at: str
    merged_from: tuple[str, ...]

    @property
    def heading(self) -> str:
        return f"{self.number} {self.title}"

    @property
    def provenance(self) -> tuple[Fact, ...]:
        proposer = f"{self.proposer} ({self.delegation})" if self.delegation else self.proposer
        approved = ", ".join(v for v in (self.approved_by, time_label(self.approved_at)) if v)
        return (
            ("Proposal", self.proposal_id),
            ("Proposed by", proposer or "—"),
            ("Endorsed by", "; ".join(self.endorsements) or "—"),
            ("Approved by", approved or "—"),
            ("Merged from", "; ".join(self.merged_from) or "—"),
        )


@dataclass(frozen=True)
class Theme:
    number: str
    key: str
    title: str
    recommendations: tuple[Recommendation, ...]

    @property
    def heading(self) -> str:
        return f"{self.number}. {self.title}"


@dataclass(frozen=True)
class Part:
    heading: str
    meeting_id: str
    meeting_title: str
    facts: tuple[Fact, ...]
    themes: tuple[Theme, ...]

    @property
    def recommendations(self) -> tuple[Recommendation, ...]:
        return tuple(rec for theme in self.themes for rec in theme.recommendations)


@dataclass(frozen=True)
class Publication:
    title: str
    subtitle: str
    facts: tuple[Fact, ...]
    sha256: str
    author: str
    subject: str
    created: datetime
    parts: tuple[Part, ...]

    @property
    def compiled(self) -> bool:
        """Whether this is a ministerial compilation, each meeting a titled part."""
        return any(part.heading for part in self.parts)


def _recommendation(raw: Mapping[str, Any]) -> Recommendation:
    proposer = raw.get("proposer") or {}
    return Recommendation(
        number=one_line(raw.get("number")),
        proposal_id=one_line(raw.get("proposal_id")),
        title=one_line(raw.get("title")),
        text=clean(raw.get("text")).strip(),
        proposer=one_line(proposer.get("name")),
        delegation=one_line(proposer.get("delegation")),
        endorsements=_names(raw.get("endorsements")),
        approved_by=one_line(raw.get("approved_by")),
        approved_at=one_line(raw.get("approved_at")),
        merged_from=_names(raw.get("merged_from")),
    )


def _themes(doc: Mapping[str, Any]) -> tuple[Theme, ...]:
    return tuple(
        Theme(
            number=one_line(theme.get("number")),
            key=one_line(theme.get("key")),
            title=one_line(theme.get("title")),
            recommendations=tuple(_recommendation(r) for r in theme.get("recommendations") or ()),
        )
        for theme in doc.get("themes") or ()
    )


def _version(doc: Mapping[str, Any]) -> str:
    version = doc.get("outcome_version")
    return "Live draft" if version is None else f"Outcome version {one_line(version)}"


def _meeting_facts(doc: Mapping[str, Any], sha256: str) -> tuple[Fact, ...]:
    meeting = doc.get("meeting") or {}
    position = one_line(doc.get("position"))
    if doc.get("position_at"):
        position = f"{position} (as at {time_label(doc['position_at'])})"
    facts: list[Fact] = [
        ("Venue", one_line(meeting.get("venue"))),
        ("Dates", dates_label(meeting.get("starts_on"), meeting.get("ends_on"))),
        ("Co-hosts", ", ".join(_names(meeting.get("hosts"))) or "—"),
        ("Ministerial", one_line(meeting.get("ministerial"))),
        ("Status", one_line(doc.get("status")).replace("_", " ").capitalize()),
        ("Version", _version(doc)),
        ("Position", position),
        ("Meeting", one_line(meeting.get("id"))),
        ("SHA-256", sha256),
    ]
    if doc.get("signature"):
        facts.append(("Signature (Ed25519)", one_line(doc["signature"])))
    return tuple((label, value or "—") for label, value in facts)


def _sha256(doc: Mapping[str, Any]) -> str:
    return one_line(doc.get("sha256")) or digest(doc)


def _created(doc: Mapping[str, Any]) -> datetime:
    return parse_time(doc.get("position_at")) or EPOCH


def publication(doc: Mapping[str, Any]) -> Publication:
    """One meeting's compiled document."""
    meeting = doc.get("meeting") or {}
    title = one_line(meeting.get("title")) or "Compiled recommendations"
    sha256 = _sha256(doc)
    ministerial = one_line(meeting.get("ministerial"))
    return Publication(
        title=title,
        subtitle="Compiled recommendations of the preparatory meeting",
        facts=_meeting_facts(doc, sha256),
        sha256=sha256,
        author=", ".join(_names(meeting.get("hosts"))) or "Secretariat",
        subject=f"Recommendations to the ministerial {ministerial}: {_version(doc)}, "
        f"position {one_line(doc.get('position'))}",
        created=_created(doc),
        parts=(Part("", one_line(meeting.get("id")), title, (), _themes(doc)),),
    )


def compilation(comp: Mapping[str, Any]) -> Publication:
    """A ministerial compilation: the forwarded document of each meeting, each a part."""
    ministerial = one_line(comp.get("ministerial"))
    docs: list[Mapping[str, Any]] = list(comp.get("meetings") or ())
    sha256 = _sha256(comp)
    parts = []
    for index, doc in enumerate(docs, start=1):
        meeting = doc.get("meeting") or {}
        title = one_line(meeting.get("title"))
        facts = _meeting_facts(doc, _sha256(doc))
        heading = f"Part {index}: {title}"
        parts.append(Part(heading, one_line(meeting.get("id")), title, facts, _themes(doc)))
    return Publication(
        title=f"Recommendations to the ministerial {ministerial}",
        subtitle="The latest forwarded outcome of each preparatory meeting",
        facts=(("Ministerial", ministerial), ("Meetings", str(len(docs))), ("SHA-256", sha256)),
        sha256=sha256,
        author="Secretariat",
        subject=f"Recommendations to the ministerial {ministerial}",
        created=max((_created(doc) for doc in docs), default=EPOCH),
        parts=tuple(parts),
    )
