"""The short soak: 300 jobs under every fault kind, the whole bot in its own process (CI)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench.soak_faults import KINDS

ROOT = Path(__file__).resolve().parent.parent
SEED = 16  # a failure replays with: python bench/soak.py --jobs 300 --seed 16
FIGURES = (
    "lost results",
    "duplicate posts",
    "results in the wrong message",
    "prompts left in ComfyUI queues",
    "longest loop stall, busy (ms)",
)


@pytest.mark.timeout(600)  # about 30 s alone; a loaded machine may take a few times that
def test_the_short_soak_keeps_every_invariant(tmp_path: Path) -> None:
    command = [sys.executable, "bench/soak.py", "--jobs", "300", "--seed", str(SEED)]
    run = subprocess.run(
        [*command, "--keep", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    log = (tmp_path / "bot.log").read_text(errors="replace")[-4000:]
    assert run.returncode == 0, f"{run.stdout}\n{run.stderr[-4000:]}\nbot.log:\n{log}"
    lines = run.stdout.splitlines()
    faults = next(line for line in lines if line.startswith("faults: "))
    for kind in KINDS:
        assert f"{kind} 0" not in faults
        assert f"{kind} " in faults
    for figure in FIGURES:
        row = next(line for line in lines if line.startswith(figure))
        assert row.split()[-1] == "ok", row
    assert lines[-1] == "PASS"
