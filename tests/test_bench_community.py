"""The community benchmark still runs and prints its figure lines (its figures are not asserted)."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench" / "bench_community.py"


def test_bench_community_prints_its_figures(capsys: pytest.CaptureFixture[str]):
    spec = importlib.util.spec_from_file_location("bench_community", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)

    assert module.main(["--terms", "20", "--members", "5", "--jobs", "50", "--images", "1"]) == 0

    out = capsys.readouterr().out
    assert re.search(r"terms=20 +check: [\d.]+ ms per request", out), out
    assert re.search(r"members=5 +gate: [\d.]+ ms per admission .*, 15 of 50 let through", out), out
    assert re.search(r"jobs=50 +lineup: [\d.]+ us per take", out), out
    assert re.search(r"nudenet(: not installed| 1024x1024: first [\d.]+ s)", out), out
