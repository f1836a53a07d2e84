"""Benchmark of the metrics: what following jobs costs per update, and what a scrape costs.

Run `python bench/bench_ops.py [--jobs N] [--updates U] [--servers K]`. Jobs are built in this
process and updated as ComfyUI's events would (one publish per progress step), once without and
once with `Metrics` following them; the difference is the metrics' CPU per update. A scrape is
then timed over K servers with every route counted. Figures are printed; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bot.comfy.backend import ComfyBackend  # noqa: E402
from bot.comfy.client import ComfyClient  # noqa: E402
from bot.jobs.model import GenerationRequest, Job, JobResult  # noqa: E402
from bot.jobs.progress import JobState  # noqa: E402
from bot.jobs.queue import JobQueue  # noqa: E402
from bot.ops.metrics import Metrics  # noqa: E402
from bot.workflows.library import WorkflowLibrary  # noqa: E402

TARGET_US_PER_UPDATE = 20.0
TARGET_SCRAPE_MS = 10.0
ROUTES = ("/prompt", "/queue", "/history/{id}", "/view", "/upload/image", "/system_stats")


async def run_jobs(
    library: WorkflowLibrary, jobs: int, updates: int, metrics: Metrics | None
) -> float:
    """Drive `jobs` jobs through `updates` progress publishes each; return CPU seconds."""
    workflow = library.get("demo")
    made = [
        Job(GenerationRequest("bench", "demo"), workflow, workflow.with_inputs())
        for _ in range(jobs)
    ]
    if metrics is not None:
        for job in made:
            metrics.track(job)
    await asyncio.sleep(0)  # followers start
    start = time.process_time()
    for state in (JobState.QUEUED, JobState.RUNNING):
        for job in made:
            job.record(state)
        await asyncio.sleep(0)
    for step in range(updates):
        for job in made:
            job.record(JobState.RUNNING, step=step, steps=updates)
        await asyncio.sleep(0)  # every follower sees each update, as with real events
    for job in made:
        job.finish(JobResult(job.id, JobState.DONE))
    for _ in range(3):
        await asyncio.sleep(0)
    return time.process_time() - start


async def scrape_cost(
    servers: int, library: WorkflowLibrary, rounds: int = 50
) -> tuple[float, int]:
    """Return the milliseconds one scrape takes over `servers` servers, and its size in bytes."""
    clients = [ComfyClient(f"http://gpu{n}:8188") for n in range(servers)]
    backends = [ComfyBackend(client) for client in clients]
    queue = JobQueue(backends, library)
    async with Metrics("discord") as metrics:
        metrics.watch(queue)
        for client in clients:
            for route in ROUTES:
                for status in ("200", "400", "error"):
                    metrics.count_comfy("GET", client.base_url.with_path(route), status)
        start = time.perf_counter()
        for _ in range(rounds):
            body = metrics.scrape()
        elapsed = (time.perf_counter() - start) / rounds
    for client in clients:
        await client.close()
    return elapsed * 1000, len(body)


async def measure(jobs: int, updates: int, servers: int) -> None:
    library = WorkflowLibrary.load(ROOT / "workflows")
    bare = await run_jobs(library, jobs, updates, None)
    async with Metrics("discord") as metrics:
        metered = await run_jobs(library, jobs, updates, metrics)
        ended = metrics.scrape().decode()
    per_update = (metered - bare) / (jobs * (updates + 3)) * 1e6
    counted = f'comfycord_jobs_ended_total{{door="discord",state="done"}} {float(jobs)}'
    head = f"N={jobs} U={updates}"
    print(f"{head}  jobs: {bare * 1000:.1f} ms CPU bare, {metered * 1000:.1f} ms with metrics")
    print(
        f"{head}  metrics CPU per update: {per_update:.2f} us"
        f" (target < {TARGET_US_PER_UPDATE:.0f} us); every job counted: {counted in ended}"
    )
    scrape_ms, size = await scrape_cost(servers, library)
    print(
        f"K={servers}  scrape: {scrape_ms:.2f} ms, {size / 1024:.1f} KiB"
        f" (target < {TARGET_SCRAPE_MS:.0f} ms)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--updates", type=int, default=30)
    parser.add_argument("--servers", type=int, default=4)
    args = parser.parse_args(argv)
    asyncio.run(measure(args.jobs, args.updates, args.servers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
