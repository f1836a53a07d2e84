"""Tests of bot.terminal: progress text, the in-place bar and the plain line output."""

import io

import pytest

from bot.jobs.progress import JobState, ProgressSnapshot
from bot.terminal.view import ProgressView, bar, duration, node_name, status_text


class Stream(io.StringIO):
    """A text stream that claims an encoding, as sys.stdout does."""

    encoding = "utf-8"


def running(**changes: object) -> ProgressSnapshot:
    base: dict[str, object] = {
        "state": JobState.RUNNING,
        "position": 0,
        "node_id": "3",
        "node_title": "Sampler",
        "node_class": "KSampler",
        "nodes_total": 5,
        "nodes_done": 2,
    }
    return ProgressSnapshot(**{**base, **changes})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0:00"), (5.9, "0:05"), (65, "1:05"), (3725, "1:02:05"), (-1, "0:00")]
)
def test_duration(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_bar_fills_in_proportion() -> None:
    assert bar(50, 10) == "█████░░░░░"
    assert bar(0, 4, fancy=False) == "----"
    assert bar(150, 4, fancy=False) == "####"


def test_node_name_shows_title_and_class_once() -> None:
    assert node_name(running()) == "Sampler (KSampler)"
    assert node_name(running(node_title="KSampler")) == "KSampler"
    assert node_name(running(node_title=None, node_class=None)) == "node 3"


@pytest.mark.parametrize(
    ("snapshot", "text"),
    [
        (ProgressSnapshot(), "waiting to be sent to ComfyUI"),
        (ProgressSnapshot(state=JobState.QUEUED, position=2), "queued in ComfyUI, 2 prompts ahead"),
        (ProgressSnapshot(state=JobState.QUEUED, position=1), "queued in ComfyUI, 1 prompt ahead"),
        (ProgressSnapshot(state=JobState.QUEUED), "queued in ComfyUI"),
        (ProgressSnapshot(state=JobState.RUNNING), "starting"),
        (running(), "running [3/5] Sampler (KSampler)"),
        (ProgressSnapshot(state=JobState.DONE), "done"),
    ],
)
def test_status_text(snapshot: ProgressSnapshot, text: str) -> None:
    assert status_text(snapshot) == text


def test_line_has_bar_percent_steps_cached_and_time() -> None:
    view = ProgressView(Stream(), is_tty=True)
    line = view.line(running(step=5, steps=20, cached=2, elapsed=12.0, eta=36.0))
    assert line == (
        "running [3/5] Sampler (KSampler) ██████░░░░░░░░░░░░░░░░░░  25%"
        " · step 5/20 · 2 cached · ~0:36 left · 0:12"
    )
    assert "left" not in view.line(running(step=5, steps=20, eta=0.4))


def test_terminal_redraws_one_line_in_place() -> None:
    stream = Stream()
    view = ProgressView(stream, is_tty=True)
    view.show(running(step=1, steps=4))
    view.show(running(step=2, steps=4))
    view.close()
    out = stream.getvalue()
    assert out.count("\r\x1b[K") == 2
    assert out.count("\n") == 1
    assert out.endswith("step 2/4 · 0:00\n")


def test_note_keeps_the_bar_below_it() -> None:
    stream = Stream()
    view = ProgressView(stream, is_tty=True)
    view.show(running(step=1, steps=4))
    view.note("Ctrl+C: cancelling")
    assert stream.getvalue().split("\r\x1b[K")[-2] == "Ctrl+C: cancelling\n"
    assert "step 1/4" in stream.getvalue().split("\r\x1b[K")[-1]


def test_note_after_the_end_keeps_the_last_line() -> None:
    stream = Stream()
    view = ProgressView(stream, is_tty=True)
    view.show(ProgressSnapshot(state=JobState.CANCELLED))
    view.note("Interrupted")
    assert stream.getvalue() == "\r\x1b[Kcancelled · 0:00\nInterrupted\n"


def test_plain_output_prints_a_line_per_node_or_step_change_only() -> None:
    stream = Stream()
    view = ProgressView(stream, is_tty=False)
    snapshots = [
        ProgressSnapshot(state=JobState.QUEUED, position=1, elapsed=0.1),
        ProgressSnapshot(state=JobState.QUEUED, position=1, elapsed=0.6),  # same: no line
        running(node_id="1", node_title="Load", node_class="LoadImage", elapsed=1.0),
        running(step=1, steps=2, elapsed=1.5),
        running(step=1, steps=2, elapsed=1.9),  # only the time moved: no line
        running(step=2, steps=2, elapsed=2.5),
        ProgressSnapshot(state=JobState.DONE, elapsed=3.0),
    ]
    for snapshot in snapshots:
        view.show(snapshot)
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    assert lines == [
        "[0:00] queued in ComfyUI, 1 prompt ahead",
        "[0:01] running [3/5] Load (LoadImage)",  # no steps, no bar
        "[0:01] running [3/5] Sampler (KSampler) " + "█" * 12 + "░" * 12 + "  50% · step 1/2",
        "[0:02] running [3/5] Sampler (KSampler) " + "█" * 24 + " 100% · step 2/2",
        "[0:03] done",
    ]


def test_plain_output_of_long_runs_prints_every_tenth() -> None:
    stream = Stream()
    view = ProgressView(stream, is_tty=False)
    for step in range(1, 201):
        view.show(running(step=step, steps=200))
    assert len(stream.getvalue().splitlines()) == 11  # 0 %, 10 %, ... 100 %


def test_ascii_bar_when_the_stream_is_not_utf8() -> None:
    stream = io.StringIO()  # encoding None
    view = ProgressView(stream, is_tty=True)
    assert "#" * 12 + "-" * 12 in view.line(running(step=1, steps=2))
