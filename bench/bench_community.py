"""Benchmark of the community controls: banned terms, the gate, the lineup, NudeNet.

Run `python bench/bench_community.py [--terms N] [--members N] [--jobs N] [--images N]`. The gate
figure is the time of one admission while every member fires 10 requests at once against a
quota of 3, with the journal in SQLite; it also prints how many were let through (3 each
expected). Figures are printed
next to their targets; nothing is asserted. NudeNet is timed only when the moderation extra is
installed.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import random
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bot.community.gate import Admission, Gate, Member  # noqa: E402
from bot.community.guild import GuildSettings  # noqa: E402
from bot.community.nsfw import load_detector  # noqa: E402
from bot.community.terms import BannedTerms  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.jobs.lineup import WaitingLine  # noqa: E402
from bot.jobs.model import GenerationRequest, Job  # noqa: E402
from bot.jobs.servers import ServerStore  # noqa: E402
from bot.jobs.store import JobStore  # noqa: E402
from bot.workflows.library import load_workflow  # noqa: E402

SLOW = REPO / "tests" / "fixtures" / "workflows" / "slow.json"
TARGET_TERMS_MS = 5.0  # one request checked against the whole list, well inside Discord's 3 s
TARGET_TAKE_US = 200.0  # one dispatch decision
TARGET_ADMIT_MS = 5.0  # one admission, journal read included
AT_ONCE, QUOTA = 10, 3
TARGET_IMAGE_S = 1.0  # one 1024x1024 result on a CPU


def bench_terms(count: int) -> float:
    """Return milliseconds to check a 1500-character prompt against `count` terms (no match)."""
    rng = random.Random(1)
    words = ["".join(rng.choice("abcdefghij") for _ in range(8)) for _ in range(count)]
    terms = BannedTerms.parse([*words[:-5], *(f"/{w}[0-9]+/" for w in words[-5:])])
    prompt = " ".join("a watercolour fox in the snow, Ünïcödé 1337" for _ in range(35))[:1500]
    fields = {"prompt": prompt, "negative": prompt[:1000]}
    rounds = 20
    start = time.perf_counter()
    for _ in range(rounds):
        assert terms.find(fields) is None
    return (time.perf_counter() - start) / rounds * 1000


async def bench_lineup(jobs: int) -> float:
    """Return microseconds per `take` with `jobs` waiting from 50 members of 3 priorities."""
    workflow = load_workflow(SLOW)
    line = WaitingLine()
    for n in range(jobs):
        request = GenerationRequest(f"member{n % 50}", "slow", priority=n % 3)
        line.append(Job(request, workflow, dict(workflow.graph)))
    start = time.perf_counter()
    taken = 0
    while line.take(lambda job: "gpu") is not None:
        taken += 1
    return (time.perf_counter() - start) / max(taken, 1) * 1e6


class NoJobs:
    """A queue with no open jobs (every admission here is still to be queued)."""

    def active_count(self, requester: str, *, guild_id: int | None = None) -> int:
        return 0


async def bench_gate(members: int) -> tuple[float, int]:
    """Return ms per admission and how many were let through, `AT_ONCE` per member at once."""
    env = {"DAILY_IMAGES": str(QUOTA), "MAX_JOBS_PER_USER": str(AT_ONCE)}
    defaults = GuildSettings.defaults(Settings.from_env(env))
    with tempfile.TemporaryDirectory() as folder:
        async with JobStore(Path(folder) / "bench.db") as store:
            gate = Gate(defaults, ServerStore(store))
            tries = [
                gate.admit(Member(user, 1), workflow="txt2img", fields={}, jobs=NoJobs())
                for user in range(members)
                for _ in range(AT_ONCE)
            ]
            start = time.perf_counter()
            outcomes = await asyncio.gather(*tries, return_exceptions=True)
            elapsed = time.perf_counter() - start
    admitted = sum(1 for outcome in outcomes if isinstance(outcome, Admission))
    return elapsed / len(tries) * 1e3, admitted


def picture(size: int) -> bytes:
    """A made-up safe picture: sky, sun, hills."""
    image = Image.new("RGB", (size, size), (120, 170, 230))
    draw = ImageDraw.Draw(image)
    draw.ellipse((size * 0.7, size * 0.1, size * 0.85, size * 0.25), fill=(250, 220, 90))
    draw.polygon(
        [(0, size * 0.8), (size * 0.4, size * 0.5), (size, size * 0.7), (size, size), (0, size)],
        fill=(60, 140, 70),
    )
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def bench_nudenet(images: int) -> tuple[float, float] | None:
    """Return (first image with the model load, each next image) in seconds, or None."""
    detector = load_detector()
    if detector is None:
        return None
    data = picture(1024)
    start = time.perf_counter()
    detector.detect(data)
    first = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(images):
        detector.detect(data)
    return first, (time.perf_counter() - start) / max(images, 1)


def main(argv: list[str] | None = None) -> int:
    """Run every benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--terms", type=int, default=200)
    parser.add_argument("--members", type=int, default=100)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--images", type=int, default=5)
    args = parser.parse_args(argv)
    terms_ms = bench_terms(args.terms)
    target = f"(target < {TARGET_TERMS_MS} ms)"
    print(f"terms={args.terms:<5} check: {terms_ms:.2f} ms per request {target}")
    admit_ms, admitted = asyncio.run(bench_gate(args.members))
    print(
        f"members={args.members:<4} gate: {admit_ms:.2f} ms per admission"
        f" (target < {TARGET_ADMIT_MS} ms), {admitted} of {args.members * AT_ONCE} let through"
        f" ({args.members * QUOTA} expected)"
    )
    take_us = asyncio.run(bench_lineup(args.jobs))
    print(
        f"jobs={args.jobs:<6} lineup: {take_us:.1f} us per take (target < {TARGET_TAKE_US:.0f} us)"
    )
    timed = bench_nudenet(args.images)
    if timed is None:
        print("nudenet: not installed (pip install -e '.[moderation]')")
    else:
        first, each = timed
        target = f"(target < {TARGET_IMAGE_S} s)"
        each_text = f"then {each:.2f} s per image {target}"
        print(f"nudenet 1024x1024: first {first:.2f} s (model load), {each_text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
