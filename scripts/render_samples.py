#!/usr/bin/env python3
"""Write the demo meeting's compiled recommendations in every format to ``docs/samples/``.

    .venv/bin/python scripts/render_samples.py            # (re)write the samples
    .venv/bin/python scripts/render_samples.py --check    # exit 1 if they would change

The Islamabad 2025 demo meeting (``api.demo.load_demo``) is loaded into a temporary data
directory and left as the demo leaves it: open, neither closed nor forwarded, so the
samples are the live document. They are the bytes the service sends for
``GET /api/v1/meetings/{id}/recommendations?format=…`` (the same compiled document and
the same renderers), named ``islamabad-2025-recommendations.<ext>``.

Every run writes the same bytes: the events are recorded on a fixed clock (from 09:00 UTC
on 15 April 2025, ``STEP`` apart) and the ids that are not derived from idempotency keys
(the proposals') come from a seeded generator, so times, ids and positions never change.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import eventsourcing.domain  # noqa: E402

from api.container import Container  # noqa: E402
from api.demo import load_demo  # noqa: E402
from api.settings import Settings  # noqa: E402
from projections.documents import FORMATS  # noqa: E402

OUT = ROOT / "docs" / "samples"
NAME = "islamabad-2025-recommendations"
START = datetime(2025, 4, 15, 9, 0, tzinfo=UTC)
STEP = timedelta(minutes=7)
SEED = 20250415


@contextmanager
def fixed_clock_and_ids() -> Iterator[None]:
    """Event times START, START + STEP, …; uuid4 from a seeded generator."""
    lock = threading.Lock()
    ticks = iter(range(1_000_000))
    rng = random.Random(SEED)

    def now() -> datetime:
        with lock:
            return START + next(ticks) * STEP

    def uuid4() -> uuid.UUID:
        with lock:
            return uuid.UUID(int=rng.getrandbits(128), version=4)

    with (
        mock.patch.object(eventsourcing.domain, "datetime_now_with_tzinfo", now),
        mock.patch.object(eventsourcing.domain, "uuid4", uuid4),
        mock.patch.object(uuid, "uuid4", uuid4),
    ):
        yield


def render_demo() -> dict[str, bytes]:
    """The demo meeting's live document in every format, keyed by file extension."""
    with tempfile.TemporaryDirectory(prefix="prepmeet-samples-") as tmp:
        settings = Settings(
            data_dir=Path(tmp),
            database_url=None,
            signing_key_file=None,
            embedded_projector=True,
            create_tables=True,
        )
        container = Container(settings)
        try:
            container.start()
            with fixed_clock_and_ids():
                meeting_id = load_demo(container.app)["meeting_id"]
            container.await_views()
            doc = container.views.document(meeting_id)
            return {fmt.extension: fmt.render(doc) for fmt in FORMATS.values()}
        finally:
            container.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help=f"directory (default {OUT})")
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if a sample would change"
    )
    args = parser.parse_args(argv)
    samples = render_demo()
    stale = []
    if not args.check:
        args.out.mkdir(parents=True, exist_ok=True)
    for extension, data in samples.items():
        path = args.out / f"{NAME}.{extension}"
        current = path.read_bytes() if path.exists() else None
        if current != data:
            stale.append(path)
        if not args.check:
            path.write_bytes(data)
        digest = hashlib.sha256(data).hexdigest()
        print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}  "
              f"{len(data):>7} bytes  sha256 {digest}")  # fmt: skip
    if args.check and stale:
        print(f"{len(stale)} sample(s) out of date: {', '.join(p.name for p in stale)}",
              file=sys.stderr)  # fmt: skip
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
