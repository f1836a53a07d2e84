"""The community benchmark still runs and prints its figure lines (its figures are not asserted)."""

from __future__ import annotations

import re

import pytest

from bench.bench_community import main


def test_bench_community_prints_its_figures(capsys: pytest.CaptureFixture[str]):
    assert main(["--terms", "20", "--members", "5", "--jobs", "50", "--images", "1"]) == 0

    out = capsys.readouterr().out
    assert re.search(r"terms=20 +check: [\d.]+ ms per request", out), out
    assert re.search(r"members=5 +gate: [\d.]+ ms per admission .*, 15 of 50 let through", out), out
    assert re.search(r"jobs=50 +lineup: [\d.]+ us per take", out), out
    assert re.search(r"nudenet(: not installed| 1024x1024: first [\d.]+ s)", out), out
