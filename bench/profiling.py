"""Profiles of the server under load with py-spy (``--profile KEY``), summarised as text.

py-spy samples the server process and its children from outside (no change to the server)
and writes folded stacks; the summary lists the top functions by own and inclusive samples.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
from pathlib import Path

from bench.procs import PYTHON


def py_spy() -> str | None:
    found = Path(PYTHON).parent / "py-spy"
    return str(found) if found.exists() else shutil.which("py-spy")


def record_argv(raw: Path, idle: bool) -> list[str]:
    exe = py_spy() or "py-spy"
    argv = [exe, "record", "--format", "raw", "--output", str(raw), "--rate", "250"]
    argv += ["--subprocesses", "--nonblocking"]
    if idle:
        argv.append("--idle")
    return argv


def record(pid: int, raw: Path, idle: bool = False) -> subprocess.Popen[bytes] | None:
    """Start sampling ``pid`` (and its children) into ``raw``; ``None`` without py-spy."""
    if py_spy() is None:
        return None
    return subprocess.Popen(
        [*record_argv(raw, idle), "--pid", str(pid)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def finish(spy: subprocess.Popen[bytes] | None, raw: Path, out: Path) -> Path | None:
    """Stop the sampler (it writes on SIGINT), save the folded stacks and the summary."""
    if spy is not None:
        with contextlib.suppress(ProcessLookupError):
            spy.send_signal(signal.SIGINT)
        try:
            spy.wait(30)
        except subprocess.TimeoutExpired:
            spy.kill()
            spy.wait(5)
    if not raw.exists():
        return None
    text = raw.read_text(errors="replace")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".folded").write_text(text)
    summary = out.with_suffix(".txt")
    summary.write_text(summarise(text))
    return summary


def summarise(folded: str, top: int = 40) -> str:
    """The top functions of py-spy's folded stacks, by own and by inclusive samples."""
    own: dict[str, int] = {}
    incl: dict[str, int] = {}
    total = 0
    for line in folded.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [f for f in stack.split(";") if f and not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        total += count
        own[frames[-1]] = own.get(frames[-1], 0) + count
        for frame in set(frames):
            incl[frame] = incl.get(frame, 0) + count
    lines = [f"samples: {total} (py-spy, 250 Hz, every thread of the process and children)", ""]
    lines.append("top by own samples:")
    for frame, n in sorted(own.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"  {100 * n / max(total, 1):5.1f}%  {frame}")
    lines += ["", "top by inclusive samples:"]
    for frame, n in sorted(incl.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"  {100 * n / max(total, 1):5.1f}%  {frame}")
    return "\n".join(lines) + "\n"
