"""Soak: the faults, each injected through the fakes' own switches or the bot process's signals."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bench.soak_process import BotProcess
from tests.fakes.comfy import FakeComfy
from tests.fakes.discord import FakeDiscord, Interaction

KINDS = (
    "ws_drop",  # a ComfyUI WebSocket cut mid-job (no close frame)
    "comfy_restart",  # a ComfyUI server killed (queue and history forgotten) and started again
    "comfy_slow",  # a server answering HTTP slowly for a while
    "comfy_strange",  # a server answering with a proxy's HTML page or an empty JSON object
    "discord_429",  # a storm of 429s on edits and uploads
    "gateway",  # the gateway socket dropped (or op 7 RECONNECT): discord.py resumes
    "token_expiry",  # a running job's interaction token expires
    "bot_kill",  # the bot process SIGKILLed and started again
    "journal_disk",  # the journal's disk refusing writes for a while
)


@dataclass
class World:
    """What faults act on: the fakes, the bot process, and the jobs members are waiting for."""

    discord: FakeDiscord
    comfys: list[FakeComfy]
    bot: BotProcess
    rng: random.Random
    bot_up: asyncio.Event = field(default_factory=asyncio.Event)
    kills: int = 0  # SIGKILLs so far (members' requests in flight then may go unanswered)
    live_tokens: dict[str, Interaction] = field(default_factory=dict)  # job id -> its interaction
    expired: set[str] = field(default_factory=set)  # job ids whose token the fake expired
    injected: Counter[str] = field(default_factory=Counter)
    prompts: set[str] = field(default_factory=set)  # every prompt a ComfyUI was given
    succeeded: set[str] = field(default_factory=set)  # prompts a ComfyUI finished successfully
    forgotten: set[str] = field(default_factory=set)  # in the history of a server then killed

    def note(self, comfy: FakeComfy) -> None:
        """Remember the prompts a server knows, before a kill makes it forget them."""
        self.prompts |= set(comfy.history) | set(comfy.pending)
        if comfy.running is not None:
            self.prompts.add(comfy.running)
        for prompt_id, entry in comfy.history.items():
            if (entry.get("status") or {}).get("status_str") == "success":
                self.succeeded.add(prompt_id)


async def ws_drop(world: World) -> None:
    """Cut the sockets of a server that is running something (or of any)."""
    busy = [comfy for comfy in world.comfys if comfy.running is not None] or world.comfys
    await world.rng.choice(busy).drop_sockets(graceful=world.rng.random() < 0.2)


async def comfy_restart(world: World) -> None:
    """Kill a server; start it again on its port after 0.5 to 4 seconds."""
    comfy = world.rng.choice(world.comfys)
    world.note(comfy)
    world.forgotten |= set(comfy.history)  # made, but history dies with the server
    await comfy.kill()
    await asyncio.sleep(world.rng.uniform(0.5, 4.0))
    await comfy.start()


async def comfy_slow(world: World) -> None:
    """Make a server take 0.2 to 1.5 s for every HTTP answer, for 2 to 5 seconds."""
    comfy = world.rng.choice(world.comfys)
    comfy.slow = world.rng.uniform(0.2, 1.5)
    await asyncio.sleep(world.rng.uniform(2.0, 5.0))
    comfy.slow = 0.0


async def comfy_strange(world: World) -> None:
    """Make a server answer HTTP with HTML or an empty JSON object, for 1 to 3 seconds."""
    comfy = world.rng.choice(world.comfys)
    comfy.answer_strangely(world.rng.choice(("html", "json")))
    await asyncio.sleep(world.rng.uniform(1.0, 3.0))
    comfy.answer_normally()


async def discord_429(world: World) -> None:
    """Answer the next 10 to 40 edits, follow-ups and channel posts with 429."""
    count, after = world.rng.randint(10, 40), world.rng.uniform(0.1, 1.0)
    fake = world.discord
    fake.inject_429("PATCH", "/webhooks/*/messages/*", retry_after=after, count=count)
    fake.inject_429("POST", "/webhooks/*", retry_after=after, count=count // 4 + 1)
    fake.inject_429("POST", "/channels/*/messages", retry_after=after, count=count // 4 + 1)
    fake.inject_429("PATCH", "/channels/*/messages/*", retry_after=after, count=count // 4 + 1)


async def gateway(world: World) -> None:
    """Drop the gateway socket, or ask for a reconnect (op 7)."""
    if world.rng.random() < 0.5:
        await world.discord.drop_gateway()
    else:
        await world.discord.request_reconnect()


async def token_expiry(world: World) -> None:
    """Expire the interaction token of one to three jobs that have not ended."""
    candidates = sorted(set(world.live_tokens) - world.expired)
    for job_id in world.rng.sample(candidates, min(len(candidates), world.rng.randint(1, 3))):
        world.expired.add(job_id)
        world.discord.expire_token(world.live_tokens[job_id])


async def bot_kill(world: World) -> None:
    """SIGKILL the bot, leave it down for 0 to 2 seconds, and start it again."""
    world.bot_up.clear()
    world.kills += 1
    await world.bot.kill()
    await asyncio.sleep(world.rng.uniform(0.0, 2.0))
    await world.bot.start()
    world.bot_up.set()


async def journal_disk(world: World) -> None:
    """Make the journal refuse every write for 0.3 to 2 seconds."""
    world.bot.refuse_journal_writes(is_refusing=True)
    try:
        await asyncio.sleep(world.rng.uniform(0.3, 2.0))
    finally:
        world.bot.refuse_journal_writes(is_refusing=False)


INJECTORS: dict[str, Callable[[World], Awaitable[None]]] = {
    "ws_drop": ws_drop,
    "comfy_restart": comfy_restart,
    "comfy_slow": comfy_slow,
    "comfy_strange": comfy_strange,
    "discord_429": discord_429,
    "gateway": gateway,
    "token_expiry": token_expiry,
    "bot_kill": bot_kill,
    "journal_disk": journal_disk,
}


def schedule(rng: random.Random, jobs: int, per_kind: int, kills: int) -> list[tuple[int, str]]:
    """Return (after how many jobs, fault kind), sorted: `per_kind` of each, `kills` bot kills.

    Kills fall in the first half of the run, so that memory and file descriptors of the second
    half are measured on one process.
    """
    plan = [
        (rng.randrange(jobs // 20, jobs * 19 // 20), kind)
        for kind in KINDS
        if kind != "bot_kill"
        for _ in range(per_kind)
    ]
    plan += [(rng.randrange(jobs // 10, jobs // 2), "bot_kill") for _ in range(kills)]
    return sorted(plan)


async def run_faults(world: World, plan: list[tuple[int, str]], started: Callable[[], int]) -> None:
    """Inject each planned fault once `started()` jobs have begun, one fault at a time."""
    for after, kind in plan:
        while started() < after:
            await asyncio.sleep(0.1)
        await INJECTORS[kind](world)
        world.injected[kind] += 1
