"""The iterating benchmark still runs end to end (tiny sizes; its figures are not judged)."""

import re

from bench.bench_iterate import main

FIGURES = (
    "U<n> click -> posted image, in memory, median (ms)",
    "U<n> click -> posted image, after restart, median (ms)",
    "Vary click -> first progress edit, median (ms)",
)


def test_bench_iterate_prints_its_figures(capsys):
    assert main(["--clicks", "2", "--size", "64", "--interval", "0.2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("== Iterating: 2 clicks each")
    for label in FIGURES:
        line = next((line for line in lines if line.startswith(label)), None)
        assert line is not None, label
        assert re.fullmatch(r"\d+(\.\d+)?", line[len(label) :].split()[0]), line
