"""Plot throughput and latency against concurrency from a results file (matplotlib, PNG).

``python -m bench.plot [RESULTS.json]`` (default: the newest file in bench/results/) writes
``RESULTS.png`` beside it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def newest() -> Path:
    files = sorted(RESULTS.glob("*.json"), key=lambda p: p.stat().st_mtime)
    if not files:
        raise SystemExit("no results in bench/results/; run python -m bench first")
    return files[-1]


def plot(path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = json.loads(Path(path).read_text())
    sweep: dict[str, list[dict[str, float]]] = data.get("sweep") or {}
    if not sweep:
        raise SystemExit(f"{path} has no concurrency sweep (run without --smoke)")
    fig, (ax_t, ax_l) = plt.subplots(1, 2, figsize=(12, 4.8))
    for name, points in sweep.items():
        xs = [p["concurrency"] for p in points]
        ax_t.plot(xs, [p["throughput_per_s"] for p in points], marker="o", label=name)
        (line,) = ax_l.plot(xs, [p["p50_ms"] for p in points], marker="o", label=f"{name} p50")
        ax_l.plot(
            xs,
            [p["p99_ms"] for p in points],
            marker="x",
            linestyle="--",
            color=line.get_color(),
            label=f"{name} p99",
        )
    for ax in (ax_t, ax_l):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("concurrent clients")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    ax_t.set_ylabel("requests/s")
    ax_t.set_title("throughput")
    ax_l.set_ylabel("ms")
    ax_l.set_yscale("log")
    ax_l.set_title("latency")
    meta = data.get("meta", {})
    fig.suptitle(
        f"prepmeet bench {meta.get('mode', '')} · {meta.get('host', '')} · "
        f"{meta.get('date', '')} · {meta.get('cpus', '?')} CPUs"
    )
    fig.tight_layout()
    out = Path(path).with_suffix(".png")
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]) if args else newest()
    print(plot(path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
