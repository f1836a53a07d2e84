"""Benchmark: throughput over 1, 2, 4 fake ComfyUI backends, and ComfyUI requests per job.

Usage: python bench/bench_backends.py [--jobs N] [--backends 1,2,4] [--step-delay S]
    [--rate-jobs 100,1000] [--rate-backends 1,2] [--max-in-flight 2] [--in-process]

Every fake runs in its own subprocess (bench/fake_server.py) so that the fakes' CPU does not
compete with the bot's event loop; --in-process runs them in this process instead.
Prints figures only; it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.fake_server import start_fakes  # noqa: E402
from bot.comfy.backend import ComfyBackend  # noqa: E402
from bot.comfy.client import ComfyClient  # noqa: E402
from bot.jobqueue import JobQueue  # noqa: E402
from bot.jobs import GenerationRequest  # noqa: E402
from bot.progress import JobState  # noqa: E402
from bot.workflows import WorkflowLibrary  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "workflows"
STEPS = 5
TARGET = 0.95


def _library(directory: Path) -> WorkflowLibrary:
    for name in ("slow.json", "slow.toml"):
        shutil.copy(FIXTURES / name, directory / name)
    return WorkflowLibrary.load(directory)


async def _pool(
    stack: AsyncExitStack,
    urls: Sequence[str],
    workflows: WorkflowLibrary,
    args: argparse.Namespace,
    jobs: int,
) -> JobQueue:
    """Open one client + backend per URL (production defaults) under one JobQueue."""
    backends = []
    for url in urls:
        client = await stack.enter_async_context(ComfyClient(url))
        backends.append(await stack.enter_async_context(ComfyBackend(client)))
    async with asyncio.timeout(10):
        for backend in backends:
            await backend.stream.wait_connected()
            while not backend.is_healthy:
                await backend.check()
    # One requester per job, as many people asking at once; the per-user cap never binds.
    queue = JobQueue(
        backends, workflows, max_in_flight=args.max_in_flight, max_waiting=max(jobs, 1000)
    )
    return await stack.enter_async_context(queue)


async def _run(queue: JobQueue, jobs: int, tag: str, step_delay: float) -> tuple[float, int]:
    """Submit `jobs` jobs at once; return (seconds until the last ended, how many failed)."""
    start = time.perf_counter()
    submitted = [
        queue.submit(GenerationRequest(f"{tag}-{n}", "slow", steps=STEPS)) for n in range(jobs)
    ]
    async with asyncio.timeout(60 + 10 * jobs * (STEPS + 1) * step_delay):
        results = await asyncio.gather(*(job.result() for job in submitted))
    elapsed = time.perf_counter() - start
    return elapsed, sum(r.state is not JobState.DONE for r in results)


@dataclass(frozen=True, slots=True)
class Figures:
    """What one run measured."""

    backends: int
    jobs: int
    seconds: float
    failed: int
    cpu: float  # seconds of this process's CPU time (the bot, plus in-process fakes)
    requests: Counter[str]  # "METHOD /prefix" -> count, over every fake

    @property
    def label(self) -> str:
        """Return a column heading."""
        return f"K={self.backends} N={self.jobs}"


def _prefix(path: str) -> str:
    return "/" + path.strip("/").split("/", 1)[0]


async def _measure(args: argparse.Namespace, backends: int, jobs: int) -> Figures:
    """Run `jobs` jobs over `backends` fresh fakes, after a short warm-up."""
    async with AsyncExitStack() as stack:
        fakes = await start_fakes(stack, backends, args.step_delay, in_process=args.in_process)
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        queue = await _pool(stack, [f.url for f in fakes], _library(directory), args, jobs)
        await _run(queue, 2 * backends, "warm-up", args.step_delay)
        for fake in fakes:
            await fake.mark()
        cpu = time.process_time()
        seconds, failed = await _run(queue, jobs, "user", args.step_delay)
        cpu = time.process_time() - cpu
        requests: Counter[str] = Counter()
        for fake in fakes:
            await fake.collect()
            requests.update(f"{method} {_prefix(path)}" for method, path in fake.requests)
    return Figures(backends, jobs, seconds, failed, cpu, requests)


async def _throughput(args: argparse.Namespace) -> None:
    print(f"== Throughput: {args.jobs} jobs of {STEPS} steps, step delay {args.step_delay}s ==")
    print(f"{'backends':>8} {'seconds':>8} {'jobs/s':>8} {'scaling':>8} {'target':>8}  bot CPU/job")
    base: float | None = None
    for k in args.backends:
        run = await _measure(args, k, args.jobs)
        rate = run.jobs / run.seconds
        base = base or rate
        scaling = rate / base
        verdict = "ok" if scaling >= TARGET * k else "BELOW TARGET"
        failed = f" ({run.failed} failed)" if run.failed else ""
        print(
            f"{k:>8} {run.seconds:>8.2f} {rate:>8.1f} {scaling:>7.2f}x {TARGET * k:>7.2f}x"
            f" {1000 * run.cpu / run.jobs:>6.1f}ms  {verdict}{failed}"
        )
    ideal = 1 / ((STEPS + 1) * args.step_delay)
    print(f"Simulated GPU time alone allows {ideal:.1f} jobs/s per backend.")
    if args.in_process:
        print(
            "Fakes ran in this process: their simulated GPU time is asyncio.sleep on the bot's"
            " event loop, so every step waits behind the other fakes' and the bot's work;"
            " run without --in-process to give each fake its own process."
        )


async def _request_rate(args: argparse.Namespace) -> None:
    runs = [await _measure(args, k, n) for k in args.rate_backends for n in args.rate_jobs]
    print(f"\n== ComfyUI HTTP requests, every job submitted at once ({STEPS} steps) ==")
    print(
        f"(at most {args.max_in_flight} prompts per backend are in ComfyUI; the rest wait"
        " in the JobQueue)"
    )
    width = max(12, *(len(run.label) + 2 for run in runs))

    def row(name: str, values: Sequence[str]) -> None:
        print(f"{name:<22}" + "".join(f"{value:>{width}}" for value in values))

    row("", [run.label for run in runs])
    row("seconds", [f"{run.seconds:.1f}" for run in runs])
    row("failed jobs", [str(run.failed) for run in runs])
    row("requests", [str(run.requests.total()) for run in runs])
    row("requests/s", [f"{run.requests.total() / run.seconds:.1f}" for run in runs])
    row("requests/job", [f"{run.requests.total() / run.jobs:.3f}" for run in runs])
    keys = sorted({key for run in runs for key in run.requests})
    for key in keys:
        row(f"  {key}/job", [f"{run.requests[key] / run.jobs:.3f}" for run in runs])
    row("bot CPU ms/job", [f"{1000 * run.cpu / run.jobs:.2f}" for run in runs])


def _numbers(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200, help="jobs per throughput run")
    parser.add_argument("--backends", type=_numbers, default=[1, 2, 4], help="e.g. 1,2,4")
    parser.add_argument("--step-delay", type=float, default=0.01, help="seconds per fake step")
    parser.add_argument("--rate-jobs", type=_numbers, default=[100, 1000], help="e.g. 100,1000")
    parser.add_argument("--rate-backends", type=_numbers, default=[1, 2], help="e.g. 1,2")
    parser.add_argument(
        "--max-in-flight", type=int, default=2, help="prompts per backend in ComfyUI at once"
    )
    parser.add_argument("--in-process", action="store_true", help="run the fakes in-process")
    return parser.parse_args(argv)


async def _main(args: argparse.Namespace) -> None:
    await _throughput(args)
    await _request_rate(args)


def main(argv: Sequence[str] | None = None) -> int:
    """Run both benchmarks and print their figures."""
    asyncio.run(_main(parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
