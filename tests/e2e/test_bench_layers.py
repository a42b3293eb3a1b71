"""``python -m bench.layers`` takes the create route apart: every layer is measured."""

from __future__ import annotations

import asyncio
import json

import pytest

from bench import layers

MEASURES = {
    "echo",
    "echo in prepmeet",
    "create",
    "command",
    "create, projector on",
    "command, projector on",
}


def test_every_layer_of_the_create_route_is_measured(capsys: pytest.CaptureFixture[str]) -> None:
    assert layers.main(["--requests", "30", "--rounds", "1", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert set(results) == MEASURES
    for name, figures in results.items():
        assert figures["wall_us"] > 0 and figures["cpu_us"] > 0, name


def test_a_route_that_answers_otherwise_stops_the_measure() -> None:
    async def refused() -> int:
        return 401

    with pytest.raises(RuntimeError, match="401"):
        asyncio.run(layers.measure(refused, 10, 1, (201,)))
