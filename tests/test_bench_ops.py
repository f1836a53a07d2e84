"""The metrics benchmark still runs and prints its figure lines (its figures are not asserted)."""

from __future__ import annotations

import re

import pytest

from bench.bench_ops import main


def test_bench_ops_prints_its_figures(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--jobs", "10", "--updates", "5", "--servers", "2"]) == 0

    out = capsys.readouterr().out
    assert re.search(r"N=10 U=5 +metrics CPU per update: -?[\d.]+ us .*counted: True", out), out
    assert re.search(r"K=2 +scrape: [\d.]+ ms, [\d.]+ KiB", out), out
