"""Gate: the checks before queueing, per server, with quotas counted from the journal."""

import asyncio
from pathlib import Path

import pytest

from bot.community import options
from bot.community.gate import BannedTermUsed, Gate, Member, check_place
from bot.community.guild import GuildSettings
from bot.community.quotas import DAY, QuotaExceeded, next_reset
from bot.config import Settings
from bot.errors import NotAllowed, TooManyJobs
from bot.images import ImageFile
from bot.jobs.model import GenerationRequest, Job, JobResult
from bot.jobs.progress import JobState
from bot.jobs.servers import ServerStore
from bot.jobs.store import JobStore
from bot.workflows.library import WorkflowLibrary
from tests.clock import Clock

GUILD_A, GUILD_B = 1001, 1002
ALICE, BOOSTER, CHANNEL = 7, 555555555555555555, 900
MORNING = 1_796_083_200.0 + 3600  # 01:00 UTC
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
async def gate(tmp_path):
    clock = Clock(MORNING)
    async with JobStore(tmp_path / "g.db", clock=clock) as store:
        defaults = GuildSettings.defaults(Settings.from_env({"DAILY_IMAGES": "3"}))
        yield Gate(defaults, ServerStore(store), clock=clock), clock


def member(guild=GUILD_A, roles=(), **flags):
    return Member(ALICE, guild, frozenset(roles), (CHANNEL,), **flags)


class Open:
    """The queue's count of a member's unfinished jobs, as the gate reads it."""

    def __init__(self, count: int = 0) -> None:
        self.count = count

    def active_count(self, requester: str, *, guild_id: int | None = None) -> int:
        return self.count


async def admit(gate, who, *, prompt="a fox", workflow="txt2img", active=0):
    """Let a request through and give its ticket back (as a request refused later does)."""
    admission = await gate.admit(
        who, workflow=workflow, fields={"prompt": prompt}, jobs=Open(active)
    )
    admission.ticket.release()
    return admission


async def set_(gate, guild, name, raw, role=None):
    value = options.parse(name, raw, ["txt2img", "demo"])
    await gate.change(guild, lambda o: options.set_value(o, name, value, role))


async def made(gate, clock, guild, images, seconds=1.0):
    """Record one finished job of Alice's in the journal."""
    store = gate.servers.store
    job_id = f"job-{clock.now}-{guild}"
    await store.add(
        job_id, requester=str(ALICE), workflow="txt2img", params={}, origin={}, guild_id=guild
    )
    await store.update(job_id, state="running")
    clock.now += seconds
    await store.update(job_id, state="done", outputs=[f"{n}.png" for n in range(images)])


async def test_settings_of_one_server_do_not_reach_another(gate):
    gate, _ = gate
    await set_(gate, GUILD_A, "banned_terms", "fox")
    with pytest.raises(BannedTermUsed, match="Your prompt contains the banned term “fox”"):
        await admit(gate, member(GUILD_A), prompt="a F0X")
    await admit(gate, member(GUILD_B), prompt="a F0X")
    assert (await gate.rules(GUILD_B)).overrides == {}


async def test_settings_are_read_back_from_the_journal_by_a_new_gate(gate):
    gate, clock = gate
    await set_(gate, GUILD_A, "workflows", "demo")
    again = Gate(gate.defaults, gate.servers, clock=clock)
    with pytest.raises(NotAllowed, match="The workflow txt2img is not allowed here; allowed: demo"):
        await admit(again, member(), workflow="txt2img")


async def test_direct_messages_are_off_unless_allowed(gate):
    gate, clock = gate
    with pytest.raises(NotAllowed, match="direct messages"):
        await admit(gate, member(None))
    dms = Gate(gate.defaults, gate.servers, allow_dms=True, clock=clock)
    await admit(dms, member(None))
    await made(dms, clock, None, 3)  # the global default quota applies in DMs
    with pytest.raises(QuotaExceeded, match="used 3 of 3 images today"):
        await admit(dms, member(None))


async def test_channels_and_roles_of_the_server(gate):
    gate, _ = gate
    await set_(gate, GUILD_A, "channels", "<#123456789012345678>")
    with pytest.raises(NotAllowed, match="I only take requests in <#123456789012345678>"):
        await admit(gate, member())
    await set_(gate, GUILD_A, "channels", "all")
    await set_(gate, GUILD_A, "roles", f"<@&{BOOSTER}>")
    with pytest.raises(NotAllowed, match=f"<@&{BOOSTER}>"):
        await admit(gate, member())
    await admit(gate, member(roles=[BOOSTER]))


async def test_jobs_at_once_per_server(gate):
    gate, _ = gate
    await set_(gate, GUILD_A, "jobs_per_member", "1")
    with pytest.raises(TooManyJobs):
        await admit(gate, member(), active=1)
    await admit(gate, member(GUILD_B), active=1)


async def test_quota_by_role_counts_the_journal_and_resets_at_midnight(gate):
    gate, clock = gate
    await set_(gate, GUILD_A, "images_per_day", "5", role=BOOSTER)
    await made(gate, clock, GUILD_A, 2)
    await made(gate, clock, GUILD_B, 3)  # another server's images do not count here
    with pytest.raises(QuotaExceeded, match="You have used 3 of 3 images today") as caught:
        await admit(gate, member(), active=1)  # two made, one still running
    assert caught.value.retry_at == MORNING - 3600 + DAY
    await admit(gate, member(roles=[BOOSTER]), active=1)  # the booster's 5 apply
    clock.now = MORNING - 3600 + DAY  # midnight: the counts start again
    await admit(gate, member(), active=0)


async def test_gpu_seconds_and_cooldown(gate):
    gate, clock = gate
    await set_(gate, GUILD_A, "images_per_day", "none")
    await set_(gate, GUILD_A, "gpu_seconds_per_day", "10")
    await made(gate, clock, GUILD_A, 1, seconds=11)
    with pytest.raises(QuotaExceeded, match="used 11 of 10 GPU-seconds today"):
        await admit(gate, member())
    await set_(gate, GUILD_A, "gpu_seconds_per_day", "none")
    await set_(gate, GUILD_A, "cooldown", "30")
    with pytest.raises(QuotaExceeded, match="Please wait between jobs"):
        await admit(gate, member())  # the journal's job ended 0 s ago, asked for 11 s ago
    clock.now += 19
    await admit(gate, member())
    with pytest.raises(QuotaExceeded, match=f"next one <t:{int(clock.now + 30)}:R>"):
        await admit(gate, member())
    clock.now += 30
    await admit(gate, member())


async def test_managers_and_the_owner_are_exempt_unless_the_setting_says_otherwise(gate):
    gate, clock = gate
    await made(gate, clock, GUILD_A, 3)
    await admit(gate, member(is_manager=True))
    await admit(gate, member(is_owner=True))
    await set_(gate, GUILD_A, "exempt_admins", "false")
    with pytest.raises(QuotaExceeded):
        await admit(gate, member(is_manager=True))


async def test_the_highest_role_priority_comes_with_the_admission(gate):
    gate, _ = gate
    await set_(gate, GUILD_A, "priority", "3", role=BOOSTER)
    assert (await admit(gate, member(roles=[BOOSTER]))).priority == 3
    assert (await admit(gate, member(GUILD_B, roles=[BOOSTER]))).priority == 0


@pytest.mark.parametrize(
    ("env", "channels", "roles", "refusal"),
    [
        ({}, [1], [], None),
        ({"ALLOWED_CHANNEL_IDS": "1,2"}, [2], [], None),
        ({"ALLOWED_CHANNEL_IDS": "1,2"}, [3, 2], [], None),  # a thread whose parent is allowed
        ({"ALLOWED_CHANNEL_IDS": "1,2"}, [3], [], "I only take requests in <#1>, <#2>."),
        ({"ALLOWED_ROLE_IDS": "9"}, [3], [8, 9], None),
        ({"ALLOWED_ROLE_IDS": "9"}, [3], [8], "You need one of these roles"),
    ],
)
def test_the_env_allow_lists_are_every_servers_default(env, channels, roles, refusal):
    rules = GuildSettings.defaults(Settings.from_env(env))
    who = Member(ALICE, GUILD_A, frozenset(roles), tuple(channels))
    if refusal is None:
        check_place(rules, who, allow_dms=False)
    else:
        with pytest.raises(NotAllowed, match=refusal):
            check_place(rules, who, allow_dms=False)


async def test_the_memory_of_latest_jobs_stays_bounded(gate, monkeypatch):
    from bot.community import gate as gate_module

    gate, clock = gate
    monkeypatch.setattr(gate_module, "LAST_JOBS_KEPT", 3)
    for user in range(3):
        await gate.admit(Member(user, GUILD_B), workflow="txt2img", fields={}, jobs=Open())
    clock.now += DAY + 1
    await gate.admit(Member(99, GUILD_B), workflow="txt2img", fields={}, jobs=Open())
    assert list(gate._last_job) == [(GUILD_B, 99)]


def finished_job(library, images: int) -> Job:
    """A job of Alice's that ended in memory with `images` outputs, unknown to the journal."""
    workflow = library.get("demo")
    request = GenerationRequest(requester=str(ALICE), workflow="demo", guild_id=GUILD_A)
    job = Job(request, workflow, request.graph_for(workflow))
    outputs = tuple(ImageFile(f"{n}.png", b"png") for n in range(images))
    job.finish(JobResult(job.id, JobState.DONE, outputs=outputs))
    return job


async def test_admissions_racing_each_other_take_exactly_the_quota(gate):
    gate, clock = gate
    await set_(gate, GUILD_A, "jobs_per_member", "10")
    await made(gate, clock, GUILD_A, 1)

    tried = await asyncio.gather(
        *(gate.admit(member(), workflow="txt2img", fields={}, jobs=Open()) for _ in range(5)),
        return_exceptions=True,
    )

    assert [type(outcome).__name__ for outcome in tried] == [
        "Admission",
        "Admission",
        "QuotaExceeded",
        "QuotaExceeded",
        "QuotaExceeded",
    ]
    assert {str(refused) for refused in tried[2:]} == {
        f"You have used 3 of 3 images today; more <t:{next_reset(clock.now):.0f}:R>."
    }


async def test_a_ticket_counts_until_its_job_is_queued_and_is_given_back_when_refused(gate):
    gate, _ = gate
    await set_(gate, GUILD_A, "jobs_per_member", "1")
    first = await gate.admit(member(), workflow="txt2img", fields={}, jobs=Open())
    with pytest.raises(TooManyJobs):  # let through, not queued yet: it holds the one place
        await gate.admit(member(), workflow="txt2img", fields={}, jobs=Open())
    first.ticket.release()  # refused afterwards (say, its image): the place comes back
    second = await gate.admit(member(), workflow="txt2img", fields={}, jobs=Open())
    second.ticket.bind(finished_job(WorkflowLibrary.load(REPO / "workflows"), 0))
    await gate.admit(member(), workflow="txt2img", fields={}, jobs=Open())  # that one ended


async def test_an_ended_job_counts_before_the_journal_has_its_end_and_once_after(gate):
    gate, clock = gate
    library = WorkflowLibrary.load(REPO / "workflows")
    await made(gate, clock, GUILD_A, 1)
    admission = await gate.admit(member(), workflow="txt2img", fields={}, jobs=Open())
    job = finished_job(library, 2)
    admission.ticket.bind(job)
    expected = f"You have used 3 of 3 images today; more <t:{next_reset(clock.now):.0f}:R>."
    with pytest.raises(QuotaExceeded) as before:
        await admit(gate, member())
    store = gate.servers.store
    await store.add(
        job.id, requester=str(ALICE), workflow="demo", params={}, origin={}, guild_id=GUILD_A
    )
    await store.update(job.id, state="done", outputs=["0.png", "1.png"])
    with pytest.raises(QuotaExceeded) as after:
        await admit(gate, member())
    assert str(before.value) == str(after.value) == expected
    assert gate._ledger.held((GUILD_A, ALICE), since=0, journalled=()).images == 0  # closed
