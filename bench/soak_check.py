"""Soak: the invariants, checked on what members saw, what ComfyUI ran and what the journal says."""

from __future__ import annotations

import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench.soak_faults import World
from bench.soak_members import Tally
from bench.soak_observe import Observer
from bench.soak_process import Sample
from bot.jobs.progress import JobState

FINAL_STATES = tuple(str(state) for state in JobState if state.is_final)
RSS_NOISE_MIB = 12.0
RSS_NOISE_SHARE = 0.10
FD_NOISE = 4
STALL_LIMIT = 0.1
JUDGED_JOBS = 1000  # fewer jobs are too short a run to tell growth from warm-up


@dataclass
class Verdict:
    """Figures of the checks and the broken invariants."""

    finals: Counter[str] = field(default_factory=Counter)
    lost_results: int = 0
    duplicate_posts: int = 0  # a result in more than one message
    reposts: int = 0  # the same result uploaded again into the same message (an edit: one shown)
    forgotten: int = 0  # made, then lost with Retry: the server died before telling the bot
    wrong_message: int = 0
    orphan_prompts: int = 0
    broken: list[str] = field(default_factory=list)

    def fail(self, text: str) -> None:
        """Note one broken invariant (the first 30 are printed)."""
        self.broken.append(text)


def check_jobs(observer: Observer, tally: Tally, world: World, verdict: Verdict) -> None:
    """Every job ended once, its member was told, its result went once to its own message."""
    for job_id, intent in tally.intents.items():
        seen = observer.jobs[job_id]
        verdict.finals[seen.final or "never told"] += 1
        if len(seen.finals) != 1:
            verdict.fail(f"{job_id} ({intent.kind}) showed final states {seen.finals}")
        is_lost = seen.final is None or (job_id in world.succeeded and seen.final != "done")
        if is_lost and seen.final == "lost" and job_id in world.forgotten:
            # The server was killed before the bot heard of the success: its history (where
            # the outputs are named) is gone, so "lost, with Retry" is the truth.
            verdict.forgotten += 1
        elif is_lost and not (intent.owner_cancelled and seen.final == "cancelled"):
            verdict.lost_results += 1
            verdict.fail(f"{job_id} ({intent.kind}): ComfyUI made it, member saw {seen.final}")
        verdict.duplicate_posts += max(0, len(set(seen.results)) - 1)
        verdict.reposts += len(seen.results) - len(set(seen.results))
        if seen.final == "done" and not seen.results:
            verdict.fail(f"{job_id} ({intent.kind}) said done but posted no image: {seen.trail}")
        # An expired token changes nothing: the bot edits the same reply with its own token.
        allowed = {intent.message_id}
        for message_id in seen.results:
            if message_id not in allowed:
                verdict.wrong_message += 1
                verdict.fail(f"{job_id}: result posted to message {message_id}, not {allowed}")
        if seen.final == "cancelled" and (
            not intent.owner_cancelled or seen.cancelled_by not in (None, str(intent.owner))
        ):
            verdict.fail(f"{job_id} cancelled by {seen.cancelled_by}, owner {intent.owner}")
    if verdict.duplicate_posts:
        verdict.fail(f"{verdict.duplicate_posts} results posted more than once")
    strangers = set(observer.jobs) - set(tally.intents)
    for job_id in sorted(strangers):
        verdict.fail(f"{job_id} appeared in a message nobody asked for ({observer.jobs[job_id]})")


def check_comfy(
    world: World, tally: Tally, leftovers: dict[str, list[str]], verdict: Verdict
) -> None:
    """No prompt is left in a ComfyUI queue, and ComfyUI only ever saw prompts of real jobs."""
    for url, prompt_ids in leftovers.items():
        verdict.orphan_prompts += len(prompt_ids)
        if prompt_ids:
            verdict.fail(f"{url} still holds prompts nobody follows: {prompt_ids[:5]}")
    unknown = world.prompts - set(tally.intents)
    if unknown:
        verdict.fail(f"ComfyUI ran {len(unknown)} prompts of no job shown to a member")


def check_journal(path: Path, verdict: Verdict) -> Counter[str]:
    """Every job in the journal ended, and its end was recorded once."""
    with sqlite3.connect(path) as db:
        states = Counter(state for (state,) in db.execute("SELECT state FROM jobs"))
        marks = ", ".join("?" for _ in FINAL_STATES)
        rows = db.execute(
            f"SELECT job_id, COUNT(*) FROM job_states WHERE state IN ({marks})"
            " GROUP BY job_id HAVING COUNT(*) > 1",
            FINAL_STATES,
        ).fetchall()
    for state, count in states.items():
        if state not in FINAL_STATES:
            verdict.fail(f"the journal has {count} jobs still {state}")
    for job_id, count in rows[:10]:
        verdict.fail(f"the journal recorded {count} final states for {job_id}")
    return states


def check_resources(samples: list[Sample], jobs: int, verdict: Verdict) -> str:
    """RSS and fds stay flat over the last half of the run (one process: kills come earlier)."""
    if jobs < JUDGED_JOBS:
        return f"not judged (fewer than {JUDGED_JOBS} jobs)"
    half = [s for s in samples[len(samples) // 2 - 1 :] if s.pid == samples[-1].pid]
    if len(half) < 2:
        return "not judged (the bot restarted in the second half)"
    rss = half[-1].rss_mib - half[0].rss_mib
    # How many sockets are open at one instant varies by a handful (keep-alive connections, a
    # WebSocket reconnecting): a leak is the floor of the last samples rising above the
    # ceiling of the first ones, not one sample above another.
    edge = max(1, len(half) // 3)
    fds = min(s.fds for s in half[-edge:]) - max(s.fds for s in half[:edge])
    if rss > max(RSS_NOISE_MIB, RSS_NOISE_SHARE * half[0].rss_mib):
        verdict.fail(f"RSS grew {rss:.1f} MiB over the second half")
    if fds > FD_NOISE:
        verdict.fail(f"open file descriptors grew by {fds} over the second half")
    first, last = half[0].fds, half[-1].fds
    return f"second half: RSS {rss:+.1f} MiB, fds {first} -> {last} (floor over ceiling {fds:+d})"


def check_stalls(figures: dict[str, float], verdict: Verdict) -> None:
    """The event loop never blocked (busy) for longer than 100 ms."""
    if figures.get("longest_busy_stall", 0.0) > STALL_LIMIT:
        verdict.fail(f"the event loop was blocked {figures['longest_busy_stall'] * 1000:.0f} ms")
