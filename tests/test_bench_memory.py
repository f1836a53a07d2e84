"""The memory benchmark still runs small and prints its figure lines (figures not asserted)."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench" / "bench_memory.py"


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_memory", BENCH)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_bench_memory_prints_its_figures(capsys: pytest.CaptureFixture[str]):
    argv = ["--jobs", "12", "--input-mib", "0.25", "--window", "4", "--keep-bytes", "0.5"]
    assert load_bench().main([*argv, "--in-process"]) == 0

    out = capsys.readouterr().out
    assert re.search(r"N=12 +inputs 0.25 MiB each, .*: 0 failed, [\d.]+ s wall", out), out
    assert re.search(r"N=12 +RSS after: [\d.]+ MiB \(target < 300 MiB\); .* peak [\d.]+ MiB", out)
    # 0.5 MiB of budget: the newest one or two jobs keep their inputs, the others none.
    found = re.search(
        r"N=12 +ended jobs listed: 12, (\d+) of them whole, holding ([\d.]+) MiB", out
    )
    assert found, out
    assert 1 <= int(found[1]) <= 2
    assert float(found[2]) <= 0.6
