"""The Discord bot benchmark still runs end to end (tiny sizes; its figures are not judged)."""

import re

from bench.bench_discord import main

FIGURES = (
    "429 answers",
    "edits/message/s, max over messages",
    "edits/message/s, median over messages",
    "shortest gap between progress edits (s)",
    "execution_success -> upload, median (ms)",
    "execution_success -> upload, p95 (ms)",
)


def test_bench_discord_prints_its_figures(capsys):
    argv = ["--jobs", "6", "--users", "3", "--interval", "0.2", "--edit-bucket", "5,1.0"]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("== Discord bot: 6 /generate jobs from 3 users")
    for label in FIGURES:
        line = next((line for line in lines if line.startswith(label)), None)
        assert line is not None, label
        assert re.fullmatch(r"\d+(\.\d+)?", line[len(label) :].split()[0]), line
    assert any("upper bound" in line for line in lines)
