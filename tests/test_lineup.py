"""WaitingLine: per-requester lines taken fairly; pure, no event loop needed beyond Job's."""

from pathlib import Path

import pytest

from bot.jobs.lineup import WaitingLine
from bot.jobs.model import GenerationRequest, Job
from bot.workflows.library import load_workflow

SLOW = Path(__file__).parent / "fixtures" / "workflows" / "slow.json"


@pytest.fixture
def make_job():
    workflow = load_workflow(SLOW)

    def make(requester: str) -> Job:
        return Job(GenerationRequest(requester, "slow"), workflow, dict(workflow.graph))

    return make


async def test_a_newcomer_goes_before_someone_just_served(make_job):
    line = WaitingLine()
    a = [make_job("a") for _ in range(3)]
    for job in a:
        line.append(job)
    assert line.take(lambda job: "gpu") == (a[0], "gpu")
    b = make_job("b")
    line.append(b)
    assert list(line) == [b, a[1], a[2]]
    assert line.take(lambda job: "gpu") == (b, "gpu")
    assert line.take(lambda job: "gpu") == (a[1], "gpu")


async def test_take_skips_jobs_that_cannot_be_placed_and_keeps_them(make_job):
    line = WaitingLine()
    a, b = make_job("a"), make_job("b")
    line.append(a)
    line.append(b)
    assert line.take(lambda job: "gpu2" if job is b else None) == (b, "gpu2")
    assert a in line
    assert line.take(lambda job: None) is None
    assert len(line) == 1


async def test_remove_and_push_front(make_job):
    line = WaitingLine()
    a1, a2, b = make_job("a"), make_job("a"), make_job("b")
    for job in (a1, a2, b):
        line.append(job)
    assert line.remove(a2)
    assert not line.remove(a2)
    taken, _ = line.take(lambda job: 1)
    assert taken is a1
    line.push_front(a1)  # taken, never started: first again
    assert next(iter(line)) is a1
    assert line.remove(a1)
    assert line.remove(b)
    assert not line
