"""The uvicorn factories: one line, no traceback, on a store they cannot use; what they set up."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run(argv: list[str], data_dir: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    """``python ARGV`` in the checkout, with only these PREPMEET_ settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREPMEET_")}
    env.update(PREPMEET_DATA_DIR=str(data_dir), **settings)
    return subprocess.run(
        [sys.executable, *argv], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("store", ["garbage sqlite file", "unreachable postgresql"])
def test_uvicorn_on_an_unusable_store_exits_with_one_line(store: str, tmp_path: Path) -> None:
    settings = {}
    if store == "garbage sqlite file":
        (tmp_path / "events.sqlite").write_bytes(b"not a database at all")
    else:
        settings["PREPMEET_DATABASE_URL"] = "postgresql://postgres@127.0.0.1:1/none"
    factory = ["-m", "uvicorn", "--factory", "api.main:create_app", "--port", "0"]
    done = run(factory, tmp_path, **settings)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("prepmeet:")]
    assert len(lines) == 1, done.stderr
    assert "store" in lines[0]


def test_the_server_sets_the_interpreter_switch_interval_it_is_given(tmp_path: Path) -> None:
    script = (
        "import sys; from api.main import create_app; create_app(); print(sys.getswitchinterval())"
    )
    done = run(["-c", script], tmp_path, PREPMEET_SWITCH_INTERVAL_MS="2.5")
    assert done.returncode == 0, done.stderr
    assert float(done.stdout.split()[-1]) == pytest.approx(0.0025)

    refused = run(["-c", script], tmp_path, PREPMEET_SWITCH_INTERVAL_MS="0")
    assert refused.returncode != 0
    assert "Traceback" not in refused.stderr
    assert [line for line in refused.stderr.splitlines() if line.startswith("prepmeet:")]


def test_the_server_factory_freezes_what_startup_built_and_create_app_does_not(
    tmp_path: Path,
) -> None:
    script = (
        "import gc; from api.main import {name}; app = {name}(); "
        "print(gc.get_freeze_count()); app.state.container.close()"
    )
    served = run(["-c", script.format(name="serve_app")], tmp_path)
    assert served.returncode == 0, served.stderr
    assert int(served.stdout.split()[-1]) > 10_000
    created = run(["-c", script.format(name="create_app")], tmp_path)
    assert created.returncode == 0, created.stderr
    assert int(created.stdout.split()[-1]) == 0
