"""Benchmark: resident memory after many image jobs (each with its own 2 MiB input) have ended.

Usage: python bench/bench_memory.py [--jobs 10000] [--input-mib 2] [--window 16]
    [--keep-bytes MIB] [--in-process]

The shipped `demo` workflow (LoadImage -> invert -> scale -> SaveImage) runs on a fake ComfyUI in
its own subprocess (bench/fake_server.py), so only our process is measured. At most `window`
jobs are unfinished at once; every job is also followed by an HTTP JobBoard, as `comfycord serve`
does. --keep-bytes sets the ended jobs' byte budget (a huge one shows the memory it saves).
Prints figures only; it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import io
import itertools
import resource
import sys
import time
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.fake_server import FakeHandle, start_fakes, while_alive  # noqa: E402
from bot.comfy.backend import ComfyBackend  # noqa: E402
from bot.comfy.client import ComfyClient  # noqa: E402
from bot.http.board import JobBoard  # noqa: E402
from bot.images import ImageFile  # noqa: E402
from bot.jobs.ended import KEEP_BYTES  # noqa: E402
from bot.jobs.model import GenerationRequest  # noqa: E402
from bot.jobs.progress import JobState  # noqa: E402
from bot.jobs.queue import JobQueue  # noqa: E402
from bot.workflows.library import WorkflowLibrary  # noqa: E402

TARGET_MIB = 300.0
CLEAR_EVERY = 200  # jobs between emptying the fake's folders (its memory, not ours)
MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Figures:
    """What one run measured."""

    jobs: int
    failed: int
    wall: float
    rss_before: float  # MiB, before the first job
    rss_after: float  # MiB, after the last job ended (gc run)
    peak: float  # MiB, the process's highest RSS
    listed: int  # ended jobs the queue still lists
    whole: int  # of them, jobs still holding their bytes
    held: float  # MiB of image bytes the queue's ended jobs hold


def rss_mib() -> float:
    """Return this process's resident set size now, from /proc (0 where there is none)."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return 0.0
    line = next((x for x in status.splitlines() if x.startswith("VmRSS:")), "VmRSS: 0 kB")
    return int(line.split()[1]) / 1024


def peak_mib() -> float:
    """Return the highest RSS this process reached (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def input_image(number: int, size: int) -> ImageFile:
    """Return a distinct PNG of about `size` bytes: a small picture, then filler after IEND."""
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (number % 256, 40, 90)).save(buffer, "PNG")
    head = buffer.getvalue() + number.to_bytes(8, "big")
    return ImageFile(f"in{number}.png", head + bytes(max(size - len(head), 0)))


async def _job(queue: JobQueue, board: JobBoard, number: int, size: int) -> bool:
    request = GenerationRequest(
        requester=f"user{number % 50}", workflow="demo", images=(input_image(number, size),)
    )
    job = queue.submit(request)
    del request  # the job holds the only reference to its input now
    board.track(job)
    return (await job.result()).state is JobState.DONE


async def _run_all(
    queue: JobQueue, board: JobBoard, fake: FakeHandle, jobs: int, size: int, window: int
) -> int:
    """Run `jobs` jobs, at most `window` unfinished at once; return how many failed."""
    failed = 0
    numbers = itertools.count()
    for start in range(0, jobs, CLEAR_EVERY):
        batch = range(start, min(start + CLEAR_EVERY, jobs))
        pending: set[asyncio.Task[bool]] = set()
        for _ in batch:
            if len(pending) >= window:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                failed += sum(1 for task in done if not task.result())
            pending.add(asyncio.ensure_future(_job(queue, board, next(numbers), size)))
        if pending:
            done, _ = await asyncio.wait(pending)
            failed += sum(1 for task in done if not task.result())
        await fake.clear()
    return failed


async def measure(jobs: int, size: int, window: int, keep_bytes: int, in_process: bool) -> Figures:
    """Run the jobs against one fake ComfyUI and measure this process's memory."""
    async with AsyncExitStack() as stack:
        [fake] = await start_fakes(stack, 1, 0.0, in_process=in_process)
        client = await stack.enter_async_context(ComfyClient(fake.url, timeout=60))
        backend = await stack.enter_async_context(ComfyBackend(client))
        async with asyncio.timeout(10):
            await backend.stream.wait_connected()
            while not backend.is_healthy:
                await backend.check()
        library = WorkflowLibrary.load(ROOT / "workflows")
        queue = JobQueue(
            [backend], library, max_per_user=jobs, max_waiting=jobs, keep_bytes=keep_bytes
        )
        await stack.enter_async_context(queue)
        board = JobBoard(lambda exc: type(exc).__name__)
        stack.push_async_callback(board.close)
        gc.collect()
        before = rss_mib()
        started = time.perf_counter()
        failed = await while_alive([fake], _run_all(queue, board, fake, jobs, size, window))
        wall = time.perf_counter() - started
        gc.collect()
        ended = [job for job in queue.jobs.values() if job.is_done]
        return Figures(
            jobs=jobs,
            failed=failed,
            wall=wall,
            rss_before=before,
            rss_after=rss_mib(),
            peak=peak_mib(),
            listed=len(ended),
            whole=sum(1 for job in ended if not job.is_released),
            held=queue.ended.held_bytes / MIB,
        )


def report(figures: Figures, size: int, keep_bytes: int) -> None:
    """Print one run's figures next to the target."""
    n = figures.jobs
    print(
        f"N={n:<6} inputs {size / MIB:.2f} MiB each, ended-job budget {keep_bytes / MIB:.0f} MiB:"
        f" {figures.failed} failed, {figures.wall:.1f} s wall ({n / figures.wall:.0f} jobs/s)"
    )
    print(
        f"N={n:<6} RSS after: {figures.rss_after:.1f} MiB (target < {TARGET_MIB:.0f} MiB);"
        f" before the first job {figures.rss_before:.1f} MiB; peak {figures.peak:.1f} MiB"
    )
    print(
        f"N={n:<6} ended jobs listed: {figures.listed}, {figures.whole} of them whole,"
        f" holding {figures.held:.1f} MiB of images"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the arguments, run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--input-mib", type=float, default=2.0)
    parser.add_argument("--window", type=int, default=16, help="jobs unfinished at once")
    parser.add_argument("--keep-bytes", type=float, default=KEEP_BYTES / MIB, help="MiB")
    parser.add_argument("--in-process", action="store_true", help="fake ComfyUI in this process")
    args = parser.parse_args(argv)
    size, keep_bytes = int(args.input_mib * MIB), int(args.keep_bytes * MIB)
    print(
        f"ComfyCord memory benchmark: the demo workflow on one fake ComfyUI"
        f" ({'in this process' if args.in_process else 'in a subprocess'}),"
        f" {args.window} jobs at a time, every job also on an HTTP JobBoard"
    )
    figures = asyncio.run(
        measure(max(1, args.jobs), size, max(1, args.window), keep_bytes, args.in_process)
    )
    report(figures, size, keep_bytes)
    return 0 if figures.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
