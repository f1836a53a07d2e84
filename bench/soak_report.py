"""Soak: print the figures of a run (jobs, faults, final states, targets, RSS, fds, stalls)."""

from __future__ import annotations

import argparse
from collections import Counter

from bench.soak_check import Verdict
from bench.soak_faults import KINDS, World
from bench.soak_members import Tally
from bench.soak_observe import Observer
from bench.soak_process import BotProcess, Sample

SHOWN_PROBLEMS = 30


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{key} {value}" for key, value in sorted(counter.items()))


def _row(name: str, value: object, target: str = "", is_ok: bool = True) -> None:
    verdict = "" if not target else ("ok" if is_ok else "BROKEN")
    print(f"{name:<40} {value!s:>12}  {target:<8} {verdict}")


def report(
    args: argparse.Namespace,
    seconds: float,
    world: World,
    tally: Tally,
    verdict: Verdict,
    samples: list[Sample],
    flatness: str,
    journal: Counter[str],
    bot: BotProcess,
    observer: Observer,
) -> None:
    """Print the run's figures and the broken invariants."""
    print(
        f"== soak: {tally.jobs_started} jobs from {args.members} members in {args.channels}"
        f" channels over {args.backends} ComfyUI servers, seed {args.seed},"
        f" {seconds:.0f} s ({tally.jobs_started / seconds:.1f} jobs/s) =="
    )
    print(f"actions: {_counts(tally.actions)}")
    print(f"outcomes: {_counts(tally.outcomes)}")
    print(f"faults: {_counts(Counter({k: world.injected[k] for k in KINDS}))}")
    print(f"final states seen by members: {_counts(verdict.finals)}")
    print(f"final states in the journal: {_counts(journal)}")
    calls, limited = observer.calls, world.discord.rate_limited
    print(
        f"bot starts {bot.starts}, stopped in {bot.stop_seconds:.1f} s,"
        f" Discord calls {calls}, 429s {limited}"
    )
    _row("lost results", verdict.lost_results, "= 0", verdict.lost_results == 0)
    _row("made, then lost with its killed server", verdict.forgotten)
    _row("duplicate posts", verdict.duplicate_posts, "= 0", verdict.duplicate_posts == 0)
    _row("results uploaded again into their message", verdict.reposts)
    _row("results in the wrong message", verdict.wrong_message, "= 0", verdict.wrong_message == 0)
    _row(
        "prompts left in ComfyUI queues", verdict.orphan_prompts, "= 0", verdict.orphan_prompts == 0
    )
    stalls = bot.stall_figures
    busy = 1000 * stalls.get("longest_busy_stall", 0.0)
    _row("longest loop stall, busy (ms)", f"{busy:.0f}", "<= 100", busy <= 100)
    _row("longest loop stall, wall (ms)", f"{1000 * stalls.get('longest_stall', 0.0):.0f}")
    _row(
        "loop pings / over 100 ms wall",
        f"{stalls.get('pings', 0)}/{stalls.get('stalls_over_100ms', 0)}",
    )
    print("RSS and fds of the bot process (jobs: MiB, fds, pid):")
    for sample in samples:
        print(
            f"  {sample.jobs:>6}: {sample.rss_mib:7.1f} MiB {sample.fds:4d} fds  pid {sample.pid}"
        )
    print(f"flatness: {flatness}")
    if stalls.get("busy_stall_stack") and busy > 100:
        print("stack of the longest busy stall:\n" + stalls["busy_stall_stack"])
    for problem in verdict.broken[:SHOWN_PROBLEMS]:
        print(f"BROKEN: {problem}")
    if len(verdict.broken) > SHOWN_PROBLEMS:
        print(f"... and {len(verdict.broken) - SHOWN_PROBLEMS} more")
    print("PASS" if not verdict.broken else f"FAIL: {len(verdict.broken)} broken invariants")
