"""Benchmark: many simultaneous /generate jobs from several users in one channel, end to end.

Usage: python bench/bench_discord.py [--jobs 100] [--users 20] [--interval 1.5]
    [--steps 10] [--step-delay 0.01] [--workflow slow] [--edit-bucket 5,5.0]

The real ComfyBot (bot/bot.py and its cogs) runs against FakeDiscord, whose per-message edit
bucket answers 429 like Discord, and FakeComfy running a model-free workflow; all three share
this process's event loop. Prints the 429 count, edits per message per second, and the time from
ComfyUI's execution_success to the upload of the images; figures sit next to their targets and
nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.discord_env import (  # noqa: E402
    edits_of,
    final_edit,
    library_dir,
    make_settings,
    open_services,
)
from tests.fakes.comfy import FakeComfy  # noqa: E402
from tests.fakes.comfy_ws import Hub  # noqa: E402
from tests.fakes.discord import FakeDiscord, Interaction, RecordedCall, run_bot  # noqa: E402

TARGET_429 = 0
TARGET_EDITS_PER_SECOND = 1.0
TARGET_MEDIAN_MS = 50.0
FOOTER_PREFIX = "job "
DEFERRED = 5  # the interaction callback type of defer(thinking=True)


class SuccessClock:
    """Note when the fake ComfyUI sends each prompt's execution_success (time.monotonic).

    It wraps the hub's `send` (the point where ComfyUI's executor emits a message), because
    execution_success goes to the bot's clientId only and no other socket could observe it.
    """

    def __init__(self, hub: Hub) -> None:
        self.times: dict[str, float] = {}
        self._send = hub.send
        hub.send = self._timed_send  # type: ignore[method-assign]  # instrument this hub only

    def _timed_send(self, event: str, data: dict[str, Any], sid: str | None) -> None:
        if event == "execution_success":
            self.times[str(data["prompt_id"])] = time.monotonic()
        self._send(event, data, sid)


@dataclass(frozen=True, slots=True)
class Message:
    """What Discord saw of one job's @original message."""

    job_id: str
    edits: tuple[float, ...]  # arrival time of every PATCH, 429s included
    progress_gaps: tuple[float, ...]  # between successive progress edits
    upload: float  # arrival of the first attempt of the edit carrying the images

    def peak_rate(self, window: float) -> float:
        """Return the most edits in any `window` seconds, per second."""
        most = max(
            sum(1 for t in self.edits if start <= t < start + window) for start in self.edits
        )
        return most / window


@dataclass(frozen=True, slots=True)
class Figures:
    """What one run measured."""

    seconds: float
    rate_limited: int
    failed: int  # jobs whose message ended without images
    messages: tuple[Message, ...]
    latencies: tuple[float, ...]  # execution_success -> upload, seconds
    requests: int


def _is_upload(ix: Interaction) -> Callable[[RecordedCall], bool]:
    is_edit = edits_of(ix)
    return lambda c: (
        is_edit(c) and bool(c.files) and bool((c.json or {}).get("embeds")) and _has_png(c)
    )


def _has_png(call: RecordedCall) -> bool:
    return any(data.startswith(b"\x89PNG") for _, data, _ in call.files)


def _message(fake: FakeDiscord, ix: Interaction, final: RecordedCall) -> Message | None:
    """Return what Discord saw of a job's message; None when the job ended without images."""
    if not final.json.get("embeds"):
        return None
    footer = final.json["embeds"][0]["footer"]["text"]
    if not footer.startswith(FOOTER_PREFIX):
        raise ValueError(f"unexpected footer {footer!r}")
    edits = [c for c in fake.calls if edits_of(ix)(c)]
    upload = next(c for c in edits if _is_upload(ix)(c))
    progress = [c.time for c in edits if c.time < upload.time and c.status == 200]
    gaps = tuple(b - a for a, b in itertools.pairwise(progress))
    return Message(footer[len(FOOTER_PREFIX) :], tuple(c.time for c in edits), gaps, upload.time)


async def _submit(fake: FakeDiscord, args: argparse.Namespace) -> list[Interaction]:
    users = [fake.add_user(f"user{n}") for n in range(args.users)]
    options: dict[str, Any] = {"workflow": args.workflow}
    if args.steps > 0:
        options["steps"] = args.steps
    interactions = await asyncio.gather(
        *(
            fake.slash("generate", {"prompt": f"job {n}", **options}, user_id=users[n % len(users)])
            for n in range(args.jobs)
        )
    )
    for ix in interactions:
        answer = await ix.wait_response(10)
        if answer["type"] != DEFERRED:
            content = (answer.get("data") or {}).get("content")
            raise RuntimeError(f"the bot refused /generate: {content}")
    return list(interactions)


async def _measure(args: argparse.Namespace, directory: Path, patch: pytest.MonkeyPatch) -> Figures:
    per_user = max(5, math.ceil(args.jobs / args.users))
    async with FakeDiscord() as fake, FakeComfy(step_delay=args.step_delay) as comfy:
        fake.install(patch)
        fake.edit_bucket = args.edit_bucket
        clock = SuccessClock(comfy.hub)
        settings = make_settings(
            comfy.url,
            library_dir(directory),
            PROGRESS_INTERVAL=str(args.interval),
            MAX_JOBS_PER_USER=str(per_user),
        )
        async with open_services(settings) as services, run_bot(services.new_bot(), timeout=10):
            start = time.monotonic()
            interactions = await _submit(fake, args)
            budget = 60 + 5 * args.jobs * (args.steps + 3) * args.step_delay
            finals = await asyncio.gather(
                *(fake.wait_for(final_edit(ix), timeout=budget) for ix in interactions)
            )
            seconds = time.monotonic() - start
    found = [_message(fake, ix, final) for ix, final in zip(interactions, finals, strict=True)]
    messages = tuple(m for m in found if m is not None)
    latencies = tuple(m.upload - clock.times[m.job_id] for m in messages)
    failed = len(found) - len(messages)
    return Figures(seconds, fake.rate_limited, failed, messages, latencies, len(fake.calls))


def _p95(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]


def _row(name: str, value: str, target: str, is_ok: bool) -> None:
    print(f"{name:<46} {value:>10}  {target:<10} {'ok' if is_ok else 'MISSES TARGET'}")


def _report(args: argparse.Namespace, run: Figures) -> None:
    limit, per = args.edit_bucket
    print(
        f"== Discord bot: {args.jobs} /generate jobs from {args.users} users in one channel,"
        f" progress interval {args.interval}s, edit bucket {limit} per {per}s per message =="
    )
    print(
        f"{args.workflow!r} workflow, {args.steps} steps of {args.step_delay}s: finished in"
        f" {run.seconds:.1f}s, {run.requests} requests to Discord"
        f" ({run.requests / run.seconds:.1f}/s)"
    )
    print(f"{'figure':<46} {'value':>10}  {'target':<10}")
    _row("jobs that ended without images", str(run.failed), "= 0", run.failed == 0)
    _row("429 answers", str(run.rate_limited), f"= {TARGET_429}", run.rate_limited <= TARGET_429)
    if not run.messages:
        return
    rates = [m.peak_rate(per) for m in run.messages]
    for label, value in (("max", max(rates)), ("median", statistics.median(rates))):
        _row(
            f"edits/message/s, {label} over messages",
            f"{value:.2f}",
            f"<= {TARGET_EDITS_PER_SECOND:g}",
            value <= TARGET_EDITS_PER_SECOND,
        )
    gaps = [gap for m in run.messages for gap in m.progress_gaps]
    shortest = min(gaps) if gaps else math.inf
    _row(
        "shortest gap between progress edits (s)",
        f"{shortest:.2f}",
        f">= {args.interval:g}",
        shortest >= args.interval,
    )
    median = 1000 * statistics.median(run.latencies)
    p95 = 1000 * _p95(run.latencies)
    _row(
        "execution_success -> upload, median (ms)",
        f"{median:.1f}",
        f"<= {TARGET_MEDIAN_MS:g}",
        median <= TARGET_MEDIAN_MS,
    )
    _row("execution_success -> upload, p95 (ms)", f"{p95:.1f}", "", True)
    print(
        f"edits/message/s = the most PATCHes of one message (429s included) in any {per:g}s"
        " window, divided by the window (progress edits at most one per interval, plus the"
        " result edit). Upload time = arrival of the result PATCH's request at"
        " the fake Discord (its first attempt), an upper bound of when the bot started the upload;"
        " execution_success time = when the fake ComfyUI queued that message for the bot."
    )


def _bucket(text: str) -> tuple[int, float]:
    limit, per = text.split(",")
    return int(limit), float(per)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100, help="simultaneous /generate jobs")
    parser.add_argument("--users", type=int, default=20, help="users the jobs come from")
    parser.add_argument("--interval", type=float, default=1.5, help="PROGRESS_INTERVAL, seconds")
    parser.add_argument(
        "--steps", type=int, default=10, help="progress steps per job (0: the workflow's own)"
    )
    parser.add_argument("--step-delay", type=float, default=0.01, help="seconds per fake step")
    parser.add_argument("--workflow", default="slow", help="slow or preview (model-free)")
    parser.add_argument(
        "--edit-bucket", type=_bucket, default=(5, 5.0), help="edits per seconds, e.g. 5,5.0"
    )
    return parser.parse_args(argv)


async def _main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as directory, pytest.MonkeyPatch.context() as patch:
        _report(args, await _measure(args, Path(directory), patch))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print its figures."""
    asyncio.run(_main(parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
