"""The core benchmark still runs and prints its figure lines (its figures are not asserted)."""

from __future__ import annotations

import re

import pytest

from bench.bench_core import main


def test_bench_core_prints_its_figures(capsys: pytest.CaptureFixture[str]):
    assert main(["--jobs", "20"]) == 0

    out = capsys.readouterr().out
    assert re.search(r"N=20 +events: \d+ routed .*, 0 failed jobs", out), out
    assert re.search(r"N=20 +CPU per event: [\d.]+ us client thread, [\d.]+ us in ", out), out
    assert re.search(r"N=20 +memory: [\d.]+ KB per job traced .* peak RSS [\d.]+ MB", out), out
    assert re.search(r"N=20 +HTTP: \d+ requests, \d+ per second, [\d.]+ per job", out), out
    for n in (4, 20):
        line = rf"N={n} +ComfyUI requests through the core: ([\d.]+) per job .*, \d+ per second "
        found = re.search(line + r".*, 0 failed jobs", out)
        assert found, out
        assert float(found[1]) <= 3.0, out  # the target: at most 3 requests per job
    assert "WebSockets opened: 1 for 1 backend(s)" in out
