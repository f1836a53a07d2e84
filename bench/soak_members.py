"""Soak: what members do (generate, mention, cancel, reroll, retry, bad input) and what they get.

Every action draws from its own `random.Random(f"{seed}:{index}")`, so a seed replays the same
members, channels, requests, clicks and delays whatever the timing.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from dataclasses import dataclass, field

from bench.soak_faults import World
from bench.soak_observe import Observer
from tests.discord_env import png
from tests.fakes.discord import Interaction

ACTIONS = {  # kind: weight
    "txt2img": 30,
    "img2img": 18,
    "mention": 10,
    "cancel_own": 12,
    "cancel_other": 8,
    "bad_workflow": 3,
    "bad_image": 3,
    "bad_channel": 3,
    "bad_mention": 2,
}
HANDLERS = {
    "txt2img": "_txt2img",
    "img2img": "_img2img",
    "mention": "_mention",
    "cancel_own": "_cancel",
    "cancel_other": "_cancel",
    "bad_workflow": "_bad",
    "bad_image": "_bad",
    "bad_channel": "_bad",
    "bad_mention": "_bad_mention",
}
ANSWER_TIMEOUT = 15.0
SHOWN_TIMEOUT = 60.0
FINAL_TIMEOUT = 240.0
DEFERRED, DEFERRED_UPDATE = 5, 6


@dataclass
class Intent:
    """What the harness knows of one job: who asked, where its reply is, what was clicked."""

    job_id: str
    owner: int
    kind: str
    message_id: int
    token: str | None = None
    owner_cancelled: bool = False
    other_cancelled: bool = False
    retry_of: str | None = None


@dataclass
class Tally:
    """Counts over the whole run, and every broken expectation with what showed it."""

    actions: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    intents: dict[str, Intent] = field(default_factory=dict)
    jobs_started: int = 0


class Members:
    """200 members (by default) acting in several channels through the fake Discord."""

    def __init__(
        self, world: World, observer: Observer, tally: Tally, channels: list[int], off: int
    ) -> None:
        self.world = world
        self.observer = observer
        self.tally = tally
        self.channels = channels  # where the bot may be used
        self.off_limits = off  # a channel the bot must refuse
        self.ids = [world.discord.add_user(f"member{n}") for n in range(200)]
        self.locks = {member: asyncio.Lock() for member in self.ids}
        self.image = png(32, 24)

    def resize(self, count: int) -> None:
        """Use `count` members instead of 200."""
        self.ids = self.ids[:count] + [
            self.world.discord.add_user(f"member{n}") for n in range(len(self.ids), count)
        ]
        self.locks = {member: asyncio.Lock() for member in self.ids}

    async def act(self, seed: int, index: int) -> None:
        """Run action `index` of the seeded plan."""
        rng = random.Random(f"{seed}:{index}")
        kind = rng.choices(list(ACTIONS), weights=list(ACTIONS.values()))[0]
        member = self.ids[rng.randrange(len(self.ids))]
        self.tally.actions[kind] += 1
        async with self.locks[member]:
            await self.world.bot_up.wait()
            kills = self.world.kills
            try:
                await getattr(self, HANDLERS[kind])(rng, kind, member)
            except LookupError as exc:  # a button the member should see is not on the message
                self.tally.problems.append(f"action {index} ({kind}): {exc}")
            except TimeoutError as exc:
                if self.world.kills != kills:  # Discord tells the member the app did not respond
                    self.tally.outcomes["request cut short by a kill before a job was shown"] += 1
                else:
                    self.tally.problems.append(f"action {index} ({kind}) timed out: {exc}")

    def _channel(self, rng: random.Random) -> int:
        return rng.choice(self.channels)

    async def _txt2img(self, rng: random.Random, kind: str, member: int) -> None:
        options = {"prompt": f"soak {kind}", "workflow": "slow", "steps": rng.randint(2, 6)}
        await self._slash(rng, kind, member, options)

    async def _img2img(self, rng: random.Random, kind: str, member: int) -> None:
        image = self.world.discord.add_attachment(self.image, "input.png")
        await self._slash(rng, kind, member, {"prompt": "soak img2img", "image": image})

    async def _cancel(self, rng: random.Random, kind: str, member: int) -> None:
        options = {"prompt": f"soak {kind}", "workflow": "slow", "steps": rng.randint(10, 40)}
        await self._slash(rng, kind, member, options)

    async def _slash(
        self, rng: random.Random, kind: str, member: int, options: dict[str, object]
    ) -> None:
        fake = self.world.discord
        ix = await fake.slash("generate", options, user_id=member, channel_id=self._channel(rng))
        answer = await ix.wait_response(ANSWER_TIMEOUT)
        if answer["type"] != DEFERRED:
            self.tally.problems.append(f"{kind} by {member} refused: {ix.response_data}")
            return
        assert ix.original_message_id is not None
        await self._follow(rng, kind, member, ix.original_message_id, ix)

    async def _mention(self, rng: random.Random, kind: str, member: int) -> None:
        fake = self.world.discord
        attachment = fake.add_attachment(self.image, "photo.png")
        posted = await fake.post_message(
            "make it blue",
            user_id=member,
            attachments=[attachment],
            mentions_bot=True,
            channel_id=self._channel(rng),
        )
        reply = await self.observer.reply_to(int(posted["id"]), ANSWER_TIMEOUT)
        await self._follow(rng, kind, member, reply, None)

    async def _follow(
        self,
        rng: random.Random,
        kind: str,
        member: int,
        message_id: int,
        ix: Interaction | None,
        retry_of: str | None = None,
    ) -> None:
        """Follow one job in its message to its end; cancel, reroll or retry as planned."""
        other = "" if retry_of is None else retry_of
        job_id = await self.observer.job_on(message_id, SHOWN_TIMEOUT, other_than=other)
        intent = Intent(
            job_id, member, kind, message_id, ix.token if ix else None, retry_of=retry_of
        )
        self.tally.intents[job_id] = intent
        self.tally.jobs_started += 1
        if ix is not None:
            self.world.live_tokens[job_id] = ix
        if kind in ("cancel_own", "cancel_other"):
            await asyncio.sleep(rng.uniform(0.0, 0.6))
            await self._click_cancel(
                intent, member if kind == "cancel_own" else self._other(member)
            )
        try:
            final = await self.observer.final_of(job_id, FINAL_TIMEOUT)
        except TimeoutError:  # shown to the member, so never excused by a kill
            self.tally.problems.append(f"{job_id} ({kind}) never ended for its member")
            return
        self.world.live_tokens.pop(job_id, None)
        self.tally.outcomes[final] += 1
        await self._after(rng, intent, final)

    async def _click_retry(self, intent: Intent, message_id: int, clicker: int) -> Interaction:
        """Click the job's Retry; say what the message shows instead when it has none."""
        try:
            return await self.world.discord.click(
                message_id, f"comfycord:retry:{intent.job_id}", user_id=clicker
            )
        except LookupError as exc:
            shown = self.world.discord.messages.get(message_id) or {}
            trail = self.observer.jobs[intent.job_id].trail[-3:]
            raise LookupError(f"{exc}; it shows {shown.get('content')!r}; {trail}") from None

    def _other(self, member: int) -> int:
        return self.ids[(self.ids.index(member) + 1) % len(self.ids)]

    async def _click_cancel(self, intent: Intent, clicker: int) -> None:
        fake = self.world.discord
        try:
            click = await fake.click(
                intent.message_id, f"comfycord:cancel:{intent.job_id}", user_id=clicker
            )
        except LookupError:
            self.tally.outcomes["cancel too late (job ended)"] += 1
            return
        if clicker == intent.owner:
            intent.owner_cancelled = True
            await click.wait_response(ANSWER_TIMEOUT)
            return
        intent.other_cancelled = True
        text = await self.observer.told_to(click.token, ANSWER_TIMEOUT)
        self.tally.outcomes["non-owner cancel refused"] += "Only" in text or "only" in text

    async def _after(self, rng: random.Random, intent: Intent, final: str) -> None:
        fake = self.world.discord
        # Where the end is shown: the job's own message (a new one only if that one is gone).
        shown_in = self.observer.jobs[intent.job_id].messages[-1]
        if final == "lost":
            if rng.random() < 0.2:  # someone else first: refused
                click = await self._click_retry(intent, shown_in, self._other(intent.owner))
                await self.observer.told_to(click.token, ANSWER_TIMEOUT)
                self.tally.outcomes["non-owner retry refused"] += 1
            click = await self._click_retry(intent, shown_in, intent.owner)
            await click.wait_response(ANSWER_TIMEOUT)
            self.tally.outcomes["retried"] += 1
            await self._follow(rng, "retry", intent.owner, shown_in, click, retry_of=intent.job_id)
        elif rng.random() < 0.12:
            clicker = intent.owner if rng.random() < 0.7 else self._other(intent.owner)
            click = await fake.click(shown_in, f"comfycord:reroll:{intent.job_id}", user_id=clicker)
            answer = await click.wait_response(ANSWER_TIMEOUT)
            if answer["type"] != DEFERRED or click.original_message_id is None:
                self.tally.problems.append(f"reroll of {intent.job_id} refused: {answer}")
                return
            self.tally.outcomes["rerolled"] += 1
            await self._follow(rng, "reroll", clicker, click.original_message_id, click)

    async def _bad(self, rng: random.Random, kind: str, member: int) -> None:
        fake = self.world.discord
        channel = self.off_limits if kind == "bad_channel" else self._channel(rng)
        options: dict[str, object] = {"prompt": "soak bad input"}
        if kind == "bad_workflow":
            options["workflow"] = "no-such-workflow"
        elif kind == "bad_image":
            options["image"] = fake.add_attachment(b"not an image", "notes.txt", "text/plain")
        ix = await fake.slash("generate", options, user_id=member, channel_id=channel)
        text = await self.observer.told_to(ix.token, ANSWER_TIMEOUT)
        self.tally.outcomes[f"{kind} told"] += bool(text)
        if ix.original_message_id in self.observer.message_jobs:
            self.tally.problems.append(f"{kind} by {member} started a job: {text!r}")

    async def _bad_mention(self, rng: random.Random, kind: str, member: int) -> None:
        fake = self.world.discord
        attachment = fake.add_attachment(self.image, "photo.png")
        posted = await fake.post_message(
            "make it red",
            user_id=member,
            attachments=[attachment],
            mentions_bot=True,
            channel_id=self.off_limits,
        )
        reply = await self.observer.reply_to(int(posted["id"]), ANSWER_TIMEOUT)
        self.tally.outcomes[f"{kind} told"] += 1
        if reply in self.observer.message_jobs:
            self.tally.problems.append(f"{kind} by {member} started a job")
