"""Figures, their ceilings and targets; the results file and the printed table."""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


def spread(values: list[float]) -> dict[str, float]:
    """min / median / max (NaN when there is nothing)."""
    clean = [v for v in values if v is not None and not math.isnan(v)]
    if not clean:
        return {"min": math.nan, "median": math.nan, "max": math.nan}
    return {"min": min(clean), "median": statistics.median(clean), "max": max(clean)}


@dataclass
class Figure:
    """One figure measured in every repetition, with the ceiling (or baseline) it is compared
    with in the same repetition, and its target.

    The ratio of repetition i is ``values[i] / base[i]``; the target applies to the median of
    those ratios (``on="ratio"``), or to the median value itself (``on="value"``).
    """

    key: str
    title: str
    unit: str
    values: list[float] = field(default_factory=list)
    base_name: str = ""
    base: list[float] = field(default_factory=list)
    target: tuple[str, float] | None = None
    on: str = "ratio"
    note: str = ""
    detail: list[Any] = field(default_factory=list)

    @property
    def ratios(self) -> list[float]:
        return [
            v / b if b and not math.isnan(b) else math.nan
            for v, b in zip(self.values, self.base, strict=False)
        ]

    @property
    def judged(self) -> float:
        series = self.ratios if self.on == "ratio" else self.values
        return spread(series)["median"]

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        value = self.judged
        if math.isnan(value):
            return False
        op, bound = self.target
        return value >= bound if op == ">=" else value <= bound

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["target"] = (
            None if self.target is None else {"op": self.target[0], "value": self.target[1]}
        )
        out["spread"] = spread(self.values)
        out["base_spread"] = spread(self.base) if self.base else None
        out["ratios"] = self.ratios if self.base else None
        out["ratio_spread"] = spread(self.ratios) if self.base else None
        out["met"] = self.met
        return out


@dataclass
class Report:
    meta: dict[str, Any] = field(default_factory=dict)
    figures: list[Figure] = field(default_factory=list)
    sweep: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, figure: Figure) -> Figure:
        self.figures.append(figure)
        return figure

    def as_dict(self) -> dict[str, Any]:
        return {
            "meta": self.meta,
            "figures": [f.as_dict() for f in self.figures],
            "sweep": self.sweep,
            "extra": self.extra,
            "notes": self.notes,
        }

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.as_dict(), indent=1, default=_json_default, allow_nan=True)
        path.write_text(text + "\n")


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, set | tuple):
        return list(value)
    return repr(value)


def _num(value: float) -> str:
    if value is None or math.isnan(value):
        return "–"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _triple(values: list[float]) -> str:
    s = spread(values)
    return f"{_num(s['min'])} / {_num(s['median'])} / {_num(s['max'])}"


def table(report: Report) -> str:
    """The figures as a fixed-width table: min / median / max over the repetitions."""
    head = (
        "fig",
        "measure (unit)",
        "value min / med / max",
        "ceiling or baseline min / med / max",
        "ratio min / med / max",
        "target",
        "met",
    )
    rows: list[tuple[str, ...]] = [head]
    for f in report.figures:
        target = "" if f.target is None else f"{f.on} {f.target[0]} {f.target[1]:g}"
        met = {True: "yes", False: "NO", None: "info"}[f.met]
        base = f"{f.base_name}: {_triple(f.base)}" if f.base else ""
        ratio = _triple(f.ratios) if f.base else ""
        rows.append((f.key, f"{f.title} ({f.unit})", _triple(f.values), base, ratio, target, met))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = []
    for n, r in enumerate(rows):
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown(report: Report) -> str:
    """The same table in Markdown."""
    lines = [
        "| fig | measure | value min / med / max | ceiling or baseline | ratio min / med / max "
        "| target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for f in report.figures:
        target = "" if f.target is None else f"{f.on} {f.target[0]} {f.target[1]:g}"
        met = {True: "yes", False: "**no**", None: "info"}[f.met]
        base = f"{f.base_name}: {_triple(f.base)}" if f.base else ""
        ratio = _triple(f.ratios) if f.base else ""
        lines.append(
            f"| {f.key} | {f.title} ({f.unit}) | {_triple(f.values)} | {base} | {ratio} "
            f"| {target} | {met} |"
        )
    return "\n".join(lines)
