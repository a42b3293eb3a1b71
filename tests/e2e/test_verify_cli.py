"""`prepmeet verify FILE.json [--key PEM]`: a forwarded document checked offline.

The document and the key are what a recipient gets over HTTP (the forwarded version's JSON
download and GET /api/v1/signing-key); the console script runs as its own process. It
exits 0 on the forwarded bytes and non-zero, with one line on standard error, on a
document with a byte changed, under a wrong key, and on a live (unsigned) document.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from api.demo import load_demo
from api.main import create_app
from projections.documents import seal
from tests.e2e.conftest import client_for, settings_for

PREPMEET = Path(sys.executable).parent / "prepmeet"


@dataclass(frozen=True)
class Files:
    data_dir: Path
    forwarded: Path
    forwarded_bytes: bytes
    live: Path
    key: Path
    directory: Path


async def fetch(data_dir: Path, directory: Path) -> Files:
    """Forward the demo meeting over HTTP and save what a recipient would receive."""
    app = create_app(settings_for(data_dir))
    try:
        demo = load_demo(app.state.container.app)
        auth = {"Authorization": f"Bearer {demo['tokens']['secretariat']}"}
        path = f"/api/v1/meetings/{demo['meeting_id']}"
        async with client_for(app) as client:
            assert (await client.post(f"{path}/close", headers=auth)).status_code == 200
            forwarded = await client.post(f"{path}/forward", headers=auth)
            assert forwarded.status_code == 201, forwarded.text
            document = await client.get(forwarded.headers["location"], headers=auth)
            assert document.status_code == 200
            live = await client.get(f"{path}/recommendations", headers=auth)
            assert live.status_code == 200 and "signature" not in live.json()
            key = await client.get("/api/v1/signing-key")
            assert key.status_code == 200
    finally:
        app.state.container.close()
    files = Files(
        data_dir,
        directory / "outcome-v1.json",
        document.content,
        directory / "live.json",
        directory / "signing-key.pub.pem",
        directory,
    )
    files.forwarded.write_bytes(document.content)
    files.live.write_bytes(live.content)
    files.key.write_text(key.json()["pem"], encoding="utf-8")
    return files


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Files:
    directory = tmp_path_factory.mktemp("verify")
    return asyncio.run(fetch(directory / "data", directory))


def prepmeet(
    *args: str | Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PREPMEET_")}
    return subprocess.run(
        [str(PREPMEET), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**environment, **(env or {})},
    )


def assert_refused(result: subprocess.CompletedProcess[str], *words: str) -> str:
    """Non-zero, nothing on standard output, one line on standard error naming the cause."""
    assert result.returncode != 0, result
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def changed_copies(original: bytes) -> dict[str, bytes]:
    """The forwarded bytes with one byte changed: in a wording, the seal, the signature, the
    structure; and a wording changed with the seal recomputed to match it."""
    doc = json.loads(original)

    def flip(at: int, to: bytes) -> bytes:
        assert original[at : at + 1] != to
        return original[:at] + to + original[at + 1 :]

    wording = original.index(doc["themes"][0]["recommendations"][0]["text"].encode()) + 10
    flipped_wording = flip(wording, bytes([original[wording] ^ 0x20]))
    at_seal = original.index(doc["sha256"].encode())
    at_signature = original.index(doc["signature"].encode()) + 5
    resealed = {**seal(json.loads(flipped_wording)), "signature": doc["signature"]}
    return {
        "wording": flipped_wording,
        "seal": flip(at_seal, b"1" if original[at_seal : at_seal + 1] == b"0" else b"0"),
        "signature": flip(
            at_signature, b"B" if original[at_signature : at_signature + 1] == b"A" else b"A"
        ),
        "json": original[:-1],  # the closing brace gone
        "resealed": json.dumps(resealed, ensure_ascii=False).encode(),
    }


CHANGED = ("wording", "seal", "signature", "json", "resealed")


def scenarios(files: Files) -> dict[str, Callable[[], subprocess.CompletedProcess[str]]]:
    """Every run of the command these tests look at, by name (run at once, in parallel)."""
    d = files.directory
    for part, changed in changed_copies(files.forwarded_bytes).items():
        assert changed != files.forwarded_bytes
        (d / f"changed-{part}.json").write_bytes(changed)
    other = Ed25519PrivateKey.generate().public_key()
    pem = serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    (d / "other.pub.pem").write_bytes(other.public_bytes(*pem))
    (d / "not-a-key.pem").write_text("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    (d / "array.json").write_text("[1, 2, 3]")
    (d / "binary.json").write_bytes(b"\xff\xfe\x00garbage")
    (d / "empty").mkdir(exist_ok=True)
    key = ("--key", files.key)
    runs: dict[str, tuple[tuple[str | Path, ...], dict[str, str] | None]] = {
        "forwarded": ((files.forwarded, *key), None),
        "own key": ((files.forwarded,), {"PREPMEET_DATA_DIR": str(files.data_dir)}),
        "no key": ((files.forwarded,), {"PREPMEET_DATA_DIR": str(d / "empty")}),
        **{f"changed {part}": ((d / f"changed-{part}.json", *key), None) for part in CHANGED},
        "wrong key": ((files.forwarded, "--key", d / "other.pub.pem"), None),
        "not a key": ((files.forwarded, "--key", d / "not-a-key.pem"), None),
        "missing key": ((files.forwarded, "--key", d / "missing.pem"), None),
        "live": ((files.live, *key), None),
        "missing file": ((d / "nowhere.json", *key), None),
        "array": ((d / "array.json", *key), None),
        "binary": ((d / "binary.json", *key), None),
    }
    return {name: partial(prepmeet, "verify", *args, env=env) for name, (args, env) in runs.items()}


@pytest.fixture(scope="module")
def runs(files: Files) -> dict[str, subprocess.CompletedProcess[str]]:
    jobs = scenarios(files)
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        futures = {name: pool.submit(job) for name, job in jobs.items()}
        return {name: future.result() for name, future in futures.items()}


def test_the_console_script_is_installed() -> None:
    assert PREPMEET.is_file() and os.access(PREPMEET, os.X_OK)


def test_a_forwarded_document_verifies_with_the_published_key(
    files: Files, runs: dict[str, subprocess.CompletedProcess[str]]
) -> None:
    result = runs["forwarded"]
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    doc = json.loads(files.forwarded_bytes)
    assert "valid" in result.stdout and doc["sha256"] in result.stdout
    assert f"outcome version {doc['outcome_version']}" in result.stdout


def test_without_key_it_uses_the_services_own_key_in_the_data_directory(
    files: Files, runs: dict[str, subprocess.CompletedProcess[str]]
) -> None:
    assert runs["own key"].returncode == 0, runs["own key"].stderr
    assert_refused(runs["no key"], "--key")
    assert not (files.directory / "empty" / "signing-key.pem").exists()  # never makes a key


@pytest.mark.parametrize("part", CHANGED)
def test_a_document_with_a_changed_byte_is_refused(
    files: Files, runs: dict[str, subprocess.CompletedProcess[str]], part: str
) -> None:
    line = assert_refused(runs[f"changed {part}"], str(files.directory / f"changed-{part}.json"))
    expected = {
        "wording": "sha256 mismatch",
        "seal": "sha256 mismatch",
        "signature": "signature",
        "json": "not a JSON document",
        "resealed": "signature does not match",
    }[part]
    assert expected in line


def test_a_wrong_key_is_refused(runs: dict[str, subprocess.CompletedProcess[str]]) -> None:
    assert_refused(runs["wrong key"], "signature does not match")
    assert_refused(runs["not a key"], "not-a-key.pem")
    assert_refused(runs["missing key"], "missing.pem")


def test_a_live_unsigned_document_is_refused(
    files: Files, runs: dict[str, subprocess.CompletedProcess[str]]
) -> None:
    line = assert_refused(runs["live"], "forwarded")
    assert str(files.live) in line


def test_a_missing_or_non_document_file_is_refused(
    runs: dict[str, subprocess.CompletedProcess[str]],
) -> None:
    assert_refused(runs["missing file"], "nowhere.json")
    assert_refused(runs["array"], "JSON object")
    assert_refused(runs["binary"], "binary.json")
