"""The memory benchmark still runs small and prints its figure lines (figures not asserted)."""

from __future__ import annotations

import re

import pytest

from bench.bench_memory import main


def test_bench_memory_prints_its_figures(capsys: pytest.CaptureFixture[str]):
    argv = ["--jobs", "12", "--input-mib", "0.25", "--window", "4", "--keep-bytes", "0.5"]
    assert main([*argv, "--in-process"]) == 0

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
