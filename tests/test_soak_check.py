"""The soak's own checks can fail: a leak, a second final state, are caught; noise is not."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bench.soak_check import Verdict, check_journal, check_resources
from bench.soak_process import Sample


def samples(fds: list[int], *, restart_at: int = 4) -> list[Sample]:
    """Ten samples, the bot restarted (a new pid) before sample `restart_at`."""
    return [
        Sample(1000 * (i + 1), 1 if i < restart_at else 2, 70.0, count)
        for i, count in enumerate(fds)
    ]


def test_open_files_that_come_and_go_are_not_a_leak() -> None:
    verdict = Verdict()
    figure = check_resources(samples([30, 42, 36, 30, 24, 26, 25, 30, 34, 29]), 10_000, verdict)
    assert verdict.broken == []
    assert "fds 24 -> 29" in figure


@pytest.mark.parametrize("step", [3, 10])
def test_open_files_that_keep_growing_are_a_leak(step: int) -> None:
    verdict = Verdict()
    leak = [30, 42, 36, 30] + [24 + step * i for i in range(6)]
    check_resources(samples(leak), 10_000, verdict)
    assert verdict.broken == [f"open file descriptors grew by {3 * step} over the second half"]


def test_a_job_whose_end_the_journal_recorded_twice_breaks_the_soak(tmp_path: Path) -> None:
    db = tmp_path / "journal.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE jobs (id TEXT, state TEXT)")
        conn.execute("CREATE TABLE job_states (job_id TEXT, state TEXT, at REAL)")
        conn.executemany("INSERT INTO jobs VALUES (?, ?)", [("a", "done"), ("b", "done")])
        rows = [("a", "waiting", 1), ("a", "done", 2), ("b", "done", 3), ("b", "done", 4)]
        conn.executemany("INSERT INTO job_states VALUES (?, ?, ?)", rows)
    verdict = Verdict()
    assert check_journal(db, verdict) == {"done": 2}
    assert verdict.broken == ["the journal recorded 2 final states for b"]
