"""WaitingLine: per-requester lines taken fairly; pure, no event loop needed beyond Job's."""

from pathlib import Path

import pytest

from bot.jobs.lineup import WaitingLine
from bot.jobs.model import GenerationRequest, Job
from bot.workflows.library import load_workflow
from tests.clock import Clock

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


@pytest.fixture
def make_ranked():
    workflow = load_workflow(SLOW)

    def make(requester: str, priority: int = 0) -> Job:
        request = GenerationRequest(requester, "slow", priority=priority)
        return Job(request, workflow, dict(workflow.graph))

    return make


def take_all(line: WaitingLine) -> list[str]:
    order = []
    while (taken := line.take(lambda job: "gpu")) is not None:
        order.append(taken[0].request.requester)
    return order


async def test_a_higher_priority_goes_first_and_stays_fair_within_its_level(make_ranked):
    line = WaitingLine(clock=Clock(1000.0))
    for requester, priority in [("low", 0), ("boost1", 2), ("boost1", 2), ("boost2", 2)]:
        line.append(make_ranked(requester, priority))
    assert [job.request.requester for job in line] == ["boost1", "boost2", "boost1", "low"]
    assert take_all(line) == ["boost1", "boost2", "boost1", "low"]


async def test_waiting_raises_the_lowest_so_it_never_starves(make_ranked):
    clock = Clock(1000.0)
    line = WaitingLine(ageing=60, clock=clock)
    line.append(make_ranked("low", 0))
    for _ in range(10):
        line.append(make_ranked("vip", 2))
    order = []
    for _ in range(4):  # one dispatch every 50 s: vip is served, low keeps waiting
        order.append(line.take(lambda job: "gpu")[0].request.requester)  # type: ignore[index]
        clock.now += 50
    # low waited 150 s (level 2, tied with vip, who was just served) by the fourth turn
    assert order == ["vip", "vip", "vip", "low"]


async def test_a_requester_just_served_does_not_age(make_ranked):
    clock = Clock(1000.0)
    line = WaitingLine(ageing=60, clock=clock)
    a1, a2 = make_ranked("a"), make_ranked("a")
    line.append(a1)
    line.append(a2)
    clock.now += 600  # a has waited long, then is served once
    assert line.take(lambda job: "gpu") == (a1, "gpu")
    line.append(b := make_ranked("b"))
    clock.now += 30
    assert next(iter(line)) is b  # the same level: the one served least recently first


async def test_a_job_put_back_goes_before_every_priority(make_ranked):
    line = WaitingLine(clock=Clock(1000.0))
    low, vip = make_ranked("low", 0), make_ranked("vip", 5)
    line.append(low)
    assert line.take(lambda job: "gpu") == (low, "gpu")
    line.append(vip)
    line.push_front(low)
    assert list(line) == [low, vip]
    assert take_all(line) == ["low", "vip"]
    assert not line
