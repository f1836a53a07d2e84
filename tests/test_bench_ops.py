"""The metrics benchmark still runs and prints its figure lines (its figures are not asserted)."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench" / "bench_ops.py"


def test_bench_ops_prints_its_figures(capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("bench_ops", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)

    assert module.main(["--jobs", "10", "--updates", "5", "--servers", "2"]) == 0

    out = capsys.readouterr().out
    assert re.search(r"N=10 U=5 +metrics CPU per update: -?[\d.]+ us .*counted: True", out), out
    assert re.search(r"K=2 +scrape: [\d.]+ ms, [\d.]+ KiB", out), out
