"""Benchmark of the ComfyUI core: N concurrent prompts, one WebSocket per backend.

Run `python bench/bench_core.py [--jobs N] [--backends K] [--version 0.3.64|0.38]`. FakeComfy
runs in this process, on its own thread and event loop, so the client's share of the CPU can be
read from the client thread's CPU clock. A last pass sends N=4 and N=100 jobs through the whole
core (JobQueue, uploads none, outputs downloaded) and counts every ComfyUI request by path.
Figures are printed next to their targets; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import resource
import sys
import threading
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bot.comfy.backend import ComfyBackend, PromptRun  # noqa: E402
from bot.comfy.client import ComfyClient  # noqa: E402
from bot.comfy.events import Event  # noqa: E402
from bot.comfy.stream import Backoff  # noqa: E402
from bot.jobs.model import GenerationRequest  # noqa: E402
from bot.jobs.progress import JobState  # noqa: E402
from bot.jobs.queue import JobQueue  # noqa: E402
from bot.workflows.library import WorkflowLibrary  # noqa: E402
from tests.comfy_prompts import slow_prompt  # noqa: E402
from tests.fakes.comfy import FakeComfy  # noqa: E402

T = TypeVar("T")
STEP_DELAY = 0.0005
STEPS = 4
TARGET_CPU_US = 50.0
TARGET_KB_PER_JOB = 100.0
TARGET_REQUESTS_PER_JOB = 3.0
REQUEST_SIZES = (4, 100)
REQUEST_STEP_DELAY = 0.02  # the request pass: 4 steps of 20 ms, closer to a real run's length
WORKFLOWS = REPO / "tests" / "fixtures" / "workflows"
_seeds = itertools.count(1)


class FakeThread:
    """K FakeComfy servers on a thread of their own, driven from the benchmark's loop."""

    def __init__(self, count: int, version: str = "0.3.64") -> None:
        self.count = count
        self.version = version
        self.fakes: list[FakeComfy] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-comfy")

    async def __aenter__(self) -> FakeThread:
        self._thread.start()
        self.fakes = await self.call(self._start)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.call(self._stop)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    async def call(self, fn: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Run a coroutine on the fakes' loop and wait for it without blocking ours."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(fn(), self._loop))

    def set_step_delay(self, seconds: float) -> None:
        """Set every fake's step delay (thread-safely)."""
        for fake in self.fakes:
            self._loop.call_soon_threadsafe(setattr, fake, "step_delay", seconds)

    def hold(self, held: bool) -> None:
        """Hold or release every fake's runner (thread-safely)."""
        for fake in self.fakes:
            self._loop.call_soon_threadsafe(fake.hold if held else fake.release)

    def requests(self) -> int:
        """Return how many HTTP requests the fakes have served so far."""
        return sum(len(fake.requests) for fake in self.fakes)

    def requests_by_path(self) -> Counter[str]:
        """Return the HTTP requests served so far by path (ids folded), WebSockets left out."""
        counts: Counter[str] = Counter()
        for fake in self.fakes:
            for _, path in list(fake.requests):
                if path not in ("/ws", "/api/ws"):
                    counts[path.rsplit("/", 1)[0] + "/{id}" if path.count("/") > 1 else path] += 1
        return counts

    def websockets(self) -> int:
        """Return how many WebSocket connections the fakes have accepted."""
        return sum(fake.requests.count(("GET", "/ws")) for fake in self.fakes)

    async def _start(self) -> list[FakeComfy]:
        fakes = [
            FakeComfy(step_delay=STEP_DELAY, previews=True, version=self.version)
            for _ in range(self.count)
        ]
        for fake in fakes:
            await fake.start()
        return fakes

    async def _stop(self) -> None:
        for fake in self.fakes:
            await fake.close()


class DispatchClock:
    """Count the events each stream routes and the client-thread CPU spent routing them."""

    def __init__(self) -> None:
        self.events = 0
        self.cpu_ns = 0

    def wrap(self, backend: ComfyBackend) -> None:
        """Time `backend.stream.dispatch` (an instance attribute shadows the method)."""
        dispatch = backend.stream.dispatch

        def timed(event: Event) -> None:
            start = time.thread_time_ns()
            dispatch(event)
            self.cpu_ns += time.thread_time_ns() - start
            self.events += 1

        backend.stream.dispatch = timed  # type: ignore[method-assign]

    def reset(self) -> None:
        """Start counting from zero."""
        self.events = self.cpu_ns = 0


@dataclass
class Figures:
    """What one pass measured."""

    jobs: int
    events: int = 0
    client_cpu: float = 0.0
    dispatch_cpu: float = 0.0
    wall: float = 0.0
    requests: int = 0
    traced_bytes: int = 0
    rss_growth_kb: float = 0.0
    failures: int = 0


async def consume(run: PromptRun) -> bool:
    """Read a run's events to its end, as a front door would; tell whether it succeeded."""
    async for _ in run.events():
        pass
    return (await run.result()).is_success


async def submit_all(backends: Sequence[ComfyBackend], jobs: int) -> list[asyncio.Task[bool]]:
    """Submit `jobs` prompts spread over the backends; start one consumer per run."""
    prompts = [slow_prompt(next(_seeds), steps=STEPS, preview="JPEG") for _ in range(jobs)]
    runs = await asyncio.gather(
        *(backends[i % len(backends)].submit(prompt) for i, prompt in enumerate(prompts))
    )
    return [asyncio.create_task(consume(run)) for run in runs]


async def cpu_pass(
    fakes: FakeThread, backends: Sequence[ComfyBackend], clock: DispatchClock, jobs: int
) -> Figures:
    """Submit and run `jobs` prompts; measure client CPU, events and HTTP requests."""
    figures = Figures(jobs)
    clock.reset()
    requests = fakes.requests()
    wall, cpu = time.perf_counter(), time.thread_time()
    consumers = await submit_all(backends, jobs)
    outcomes = await asyncio.gather(*consumers)
    figures.client_cpu = time.thread_time() - cpu
    figures.wall = time.perf_counter() - wall
    figures.requests = fakes.requests() - requests
    figures.events, figures.dispatch_cpu = clock.events, clock.cpu_ns / 1e9
    figures.failures = outcomes.count(False)
    return figures


async def memory_pass(
    fakes: FakeThread, backends: Sequence[ComfyBackend], figures: Figures
) -> None:
    """Hold the fakes, submit every prompt, and measure what the client keeps per job."""
    fakes.hold(True)
    rss_before = _current_rss_kb()
    tracemalloc.start(64)
    before = _client_bytes(tracemalloc.take_snapshot())
    consumers = await submit_all(backends, figures.jobs)
    await asyncio.sleep(0)  # let every consumer start waiting on its run
    after = _client_bytes(tracemalloc.take_snapshot())
    tracemalloc.stop()
    figures.traced_bytes = after - before
    figures.rss_growth_kb = _current_rss_kb() - rss_before
    fakes.hold(False)
    outcomes = await asyncio.gather(*consumers)
    figures.failures += outcomes.count(False)


def _client_bytes(snapshot: tracemalloc.Snapshot) -> int:
    """Sum the live allocations made under our code: bot/ or this script, never the fake."""
    ours, fake = (str(REPO / "bot") + "/", __file__), str(REPO / "tests" / "fakes") + "/"
    kinds: dict[str, int] = {}  # filename -> 1 ours, 2 fake, 0 neither
    total = 0
    # The raw (domain, size, frames, nframe) tuples: Trace objects are too slow for 10^5 traces.
    for _, size, frames, *_ in snapshot.traces._traces:  # type: ignore[attr-defined]
        seen = 0
        for filename, _ in frames:
            kind = kinds.get(filename)
            if kind is None:
                kind = kinds[filename] = (
                    1 if filename.startswith(ours) else 2 if filename.startswith(fake) else 0
                )
            seen |= kind
        if seen == 1:
            total += size
    return total


def _current_rss_kb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return float(line.split()[1])
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def machine_reference() -> float:
    """Return the CPU microseconds json.loads takes for one progress message on this machine."""
    data = {"value": 3, "max": 4, "prompt_id": "00000000-0000-4000-8000-000000000000", "node": "2"}
    message = json.dumps({"type": "progress", "data": data})
    rounds = 20000
    start = time.thread_time()
    for _ in range(rounds):
        json.loads(message)
    return 1e6 * (time.thread_time() - start) / rounds


def report(figures: Figures) -> None:
    """Print one pass's figures next to their targets."""
    n = figures.jobs
    per_event = 1e6 * figures.client_cpu / max(figures.events, 1)
    dispatch = 1e6 * figures.dispatch_cpu / max(figures.events, 1)
    traced_kb = figures.traced_bytes / 1024 / n
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"N={n:<5} events: {figures.events} routed ({figures.events / n:.1f} per job), "
        f"{figures.failures} failed jobs, {figures.wall:.2f} s wall"
    )
    print(
        f"N={n:<5} CPU per event: {per_event:.1f} us client thread, {dispatch:.2f} us in "
        f"EventStream.dispatch (target <= {TARGET_CPU_US:.0f} us)"
    )
    print(
        f"N={n:<5} memory: {traced_kb:.1f} KB per job traced on the client side "
        f"(target <= {TARGET_KB_PER_JOB:.0f} KB); RSS growth {figures.rss_growth_kb / n:.1f} KB "
        f"per job, fake included; peak RSS {peak_mb:.1f} MB (whole process)"
    )
    print(
        f"N={n:<5} HTTP: {figures.requests} requests, {figures.requests / figures.wall:.0f} per "
        f"second, {figures.requests / n:.2f} per job (target: constant in N)"
    )


async def request_pass(
    fakes: FakeThread, backends: Sequence[ComfyBackend], jobs: int
) -> tuple[Counter[str], float, int]:
    """Run `jobs` jobs through a JobQueue; return requests by path, seconds, failed jobs."""
    library = WorkflowLibrary.load(WORKFLOWS)
    queue = JobQueue(backends, library, max_per_user=jobs, max_waiting=10**6)
    async with queue:
        before = fakes.requests_by_path()
        start = time.perf_counter()
        submitted = [
            queue.submit(GenerationRequest(f"user{n}", "slow", steps=STEPS)) for n in range(jobs)
        ]
        results = await asyncio.gather(*(job.result() for job in submitted))
        wall = time.perf_counter() - start
        served = fakes.requests_by_path()
    served.subtract(before)
    return +served, wall, sum(r.state is not JobState.DONE for r in results)


def report_requests(jobs: int, served: Counter[str], wall: float, failed: int) -> None:
    """Print one request pass: per job, per second, and by path."""
    total = served.total()
    paths = ", ".join(f"{path} {count}" for path, count in sorted(served.items()))
    print(
        f"N={jobs:<5} ComfyUI requests through the core: {total / jobs:.2f} per job "
        f"(target <= {TARGET_REQUESTS_PER_JOB:.0f}), {total / wall:.0f} per second "
        f"(target: not growing with N), {failed} failed jobs, {wall:.2f} s wall; {paths}"
    )


METHOD = """\
method:
  CPU     FakeComfy runs on its own thread and event loop in this process; the client (aiohttp,
          websockets, parsing, EventStream routing, one consumer task per run) runs on the main
          thread. "client thread" = time.thread_time() of the main thread over submit + run,
          divided by the events routed. "EventStream.dispatch" = thread CPU inside dispatch only.
  memory  tracemalloc (64 frames) of live allocations made under bot/ or this script (the fake's
          frames excluded), with every prompt submitted and held in ComfyUI, divided by N.
          RSS growth (/proc VmRSS) over the same step includes the fake's queue; peak RSS is
          getrusage ru_maxrss of the whole process.
  HTTP    requests the fakes served (fake.requests) from the first submit to the last result.
          "through the core": N jobs of tests/fixtures/workflows/slow.json through a JobQueue
          (MAX_IN_FLIGHT 2 per backend, results downloaded with /view), sockets already open,
          each step taking 20 ms (a job about 0.1 s), the backends' production intervals."""


async def run(jobs: int, backend_count: int, version: str = "0.3.64") -> int:
    """Run the passes and print their figures."""
    sizes = sorted({min(100, jobs), jobs})
    print(
        f"ComfyCord core benchmark: {backend_count} backend(s), N in {sizes}, FakeComfy "
        f"{version}, step_delay={STEP_DELAY * 1000:g} ms, {STEPS} steps with JPEG previews"
    )
    print(METHOD)
    print(
        f"machine reference: json.loads of one progress message takes {machine_reference():.2f} us"
        " here (CPU figures scale with it)"
    )
    clock = DispatchClock()
    async with FakeThread(backend_count, version) as fakes:
        clients = [ComfyClient(fake.url, timeout=60) for fake in fakes.fakes]
        backends = [ComfyBackend(c, backoff=Backoff(initial=0.02, maximum=0.2)) for c in clients]
        try:
            for backend in backends:
                clock.wrap(backend)
                await backend.__aenter__()
                await asyncio.wait_for(backend.stream.wait_connected(), 10)
            await cpu_pass(fakes, backends, clock, min(10, jobs))  # warm-up, not reported
            for size in sizes:
                figures = await cpu_pass(fakes, backends, clock, size)
                await memory_pass(fakes, backends, figures)
                report(figures)
            fakes.set_step_delay(REQUEST_STEP_DELAY)
            for size in sorted({min(size, jobs) for size in REQUEST_SIZES}):
                report_requests(size, *await request_pass(fakes, backends, size))
            print(f"WebSockets opened: {fakes.websockets()} for {backend_count} backend(s)")
        finally:
            for backend in backends:
                await backend.__aexit__(None, None, None)
            for client in clients:
                await client.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the arguments and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000, help="concurrent prompts (N)")
    parser.add_argument("--backends", type=int, default=1, help="FakeComfy servers (K)")
    parser.add_argument(
        "--version", choices=("0.3.64", "0.38"), default="0.3.64", help="ComfyUI the fake plays"
    )
    args = parser.parse_args(argv)
    return asyncio.run(run(max(1, args.jobs), max(1, args.backends), args.version))


if __name__ == "__main__":
    sys.exit(main())
