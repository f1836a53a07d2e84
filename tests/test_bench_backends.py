"""The backends benchmark still runs end to end (tiny sizes; its figures are not judged)."""

import re

from bench.bench_backends import main


def test_bench_backends_prints_its_figures(capsys):
    argv = ["--jobs", "6", "--backends", "1,2", "--step-delay", "0.002"]
    assert main([*argv, "--rate-jobs", "4,8", "--rate-backends", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    throughput = [line.split() for line in lines if line[:8].strip() in ("1", "2")]
    assert [row[0] for row in throughput] == ["1", "2"]
    assert all(row[2].replace(".", "").isdigit() for row in throughput)  # jobs/s
    assert any(line.startswith("== ComfyUI HTTP requests") for line in lines)
    assert ["K=2", "N=4", "K=2", "N=8"] in [line.split() for line in lines]
    cells = [re.split(r"\s{2,}", line.strip()) for line in lines]
    figures = {row[0]: row[1:] for row in cells}
    for label in ("failed jobs", "requests/s", "requests/job", "POST /prompt/job", "GET /view/job"):
        assert len(figures[label]) == 2, label
    assert figures["failed jobs"] == ["0", "0"]
