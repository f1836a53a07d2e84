"""ProgressTracker folds ComfyUI events into the snapshot a user sees; pure, with a fake clock."""

from bot.comfy.events import (
    Executing,
    ExecutionCached,
    ExecutionStart,
    NodeState,
    Preview,
    Progress,
    ProgressState,
    Status,
)
from bot.jobs.progress import JobState, ProgressSnapshot, ProgressTracker
from tests.clock import Clock

GRAPH = {
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {}},
    "3": {"class_type": "KSampler", "inputs": {}, "_meta": {"title": "Sampler"}},
    "9": {"class_type": "SaveImage", "inputs": {}},
}


def test_a_run_moves_from_queued_through_steps_with_eta():
    clock = Clock(100.0)
    tracker = ProgressTracker(GRAPH, clock=clock)
    assert tracker.snapshot.state is JobState.WAITING
    assert tracker.apply(ExecutionStart("p", 1))
    assert tracker.apply(ExecutionCached("p", ("4",), 2))
    assert tracker.snapshot.cached == 1
    assert tracker.snapshot.nodes_total == 2
    clock.now = 101.0
    assert tracker.apply(Executing("p", "3", "3"))
    snap = tracker.snapshot
    assert (snap.state, snap.node_title, snap.node_class) == (
        JobState.RUNNING,
        "Sampler",
        "KSampler",
    )
    clock.now = 103.0
    assert tracker.apply(Progress("p", "3", 2, 8))
    snap = tracker.snapshot
    assert (snap.step, snap.steps, snap.percent) == (2, 8, 25.0)
    assert snap.eta == 6.0  # 1 s per step, 6 steps left
    assert snap.elapsed == 3.0


def test_node_without_title_shows_its_class_and_nodes_count_toward_percent():
    tracker = ProgressTracker(GRAPH)
    tracker.apply(Executing("p", "9", "9"))
    assert tracker.snapshot.node_title == "SaveImage"
    state = ProgressState(
        "p",
        (
            NodeState("4", 1.0, 1.0, "finished", "4"),
            NodeState("3", 1.0, 1.0, "finished", "3"),
        ),
    )
    assert tracker.apply(state)
    assert tracker.snapshot.nodes_done == 2
    assert round(tracker.snapshot.percent) == 67


def test_previews_are_kept_and_unrelated_events_change_nothing():
    tracker = ProgressTracker(GRAPH)
    assert tracker.apply(Preview("p", "3", "image/jpeg", b"\xff\xd8jpeg"))
    assert tracker.snapshot.preview.content_type == "image/jpeg"
    assert "bytes" in repr(tracker.snapshot.preview)
    assert not tracker.apply(Status(3, None))


def test_percent_of_a_finished_job_is_complete():
    assert ProgressSnapshot(state=JobState.DONE).percent == 100.0
    assert ProgressSnapshot().percent == 0.0
    assert JobState.LOST.is_final
    assert not JobState.QUEUED.is_final


def test_the_run_is_timed_from_comfyuis_start_to_the_end():
    clock = Clock(100.0)
    tracker = ProgressTracker(GRAPH, clock=clock)
    clock.now = 130.0  # waited half a minute in line: not GPU time
    assert tracker.ran_for == 0.0
    tracker.apply(ExecutionStart("p", 1))
    clock.now = 142.5
    tracker.apply(Executing("p", "3", "3"))
    assert tracker.ran_for == 12.5  # still running: until now
    tracker.update(state=JobState.DONE)
    clock.now = 200.0
    assert tracker.ran_for == 12.5
