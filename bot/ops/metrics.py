"""Metrics: one process's Prometheus registry of jobs, servers, ComfyUI and Discord requests."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from types import TracebackType
from typing import Self

import aiohttp
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bot.jobs.logcontext import server_name
from bot.jobs.model import Job, JobResult
from bot.jobs.progress import JobState
from bot.jobs.queue import JobQueue
from bot.ops.families import SCRAPED, WRAPPED, make
from bot.tasks import TaskSet

log = logging.getLogger(__name__)

_ID_SEGMENT = re.compile(r"^(?=.*\d)[\w-]{16,}$")  # prompt ids, UUIDs: never a label value


def route_of(path: str) -> str:
    """Return a request path with ids replaced by `{id}`, so routes stay few (`/history/{id}`)."""
    segments = ["{id}" if _ID_SEGMENT.match(part) else part for part in path.split("/")]
    return "/".join(segments) or "/"


class Metrics:
    """What one process exposes at /metrics; it owns the tasks that follow its queue's jobs.

    `door` names the front door this process serves ("discord", "http"): each process has one.
    """

    def __init__(self, door: str) -> None:
        self.door = door
        self.registry = CollectorRegistry()
        self._tasks = TaskSet(log)
        made = [(key, make(spec, self.registry)) for key, spec in WRAPPED.items()]
        self._counters = {key: made for key, made in made if isinstance(made, Counter)}
        self._gauges = {key: made for key, made in made if isinstance(made, Gauge)}
        self._histograms = {key: made for key, made in made if isinstance(made, Histogram)}

    def __repr__(self) -> str:
        return f"Metrics(door={self.door!r}, following={len(self._tasks)})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop following jobs (the jobs go on)."""
        await self._tasks.close()

    def watch(self, queue: JobQueue) -> None:
        """Follow every job `queue` takes from now on, and read its servers at each scrape."""
        self.registry.register(_QueueCollector(queue))
        queue.observers.append(self.track)

    def track(self, job: Job) -> None:
        """Count and time one job until it ends."""
        self._counters["accepted"].labels(self.door).inc()
        self._tasks.spawn(self._follow(job), f"metrics {job.id}")

    def delivered(self, job: Job, result: JobResult) -> None:
        """Record that a front door has handed the job's result to its requester."""
        # Both elapsed times are counted from the job's creation: their difference is the
        # time since the core ended the job.
        self._histograms["phases"].labels(self.door, "delivering").observe(
            max(job.snapshot.elapsed - result.elapsed, 0.0)
        )

    def scrape(self) -> bytes:
        """Return every metric in Prometheus' text format."""
        return generate_latest(self.registry)

    async def _follow(self, job: Job) -> None:
        shown: JobState | None = None
        started: float | None = None
        was_waiting = job.state is JobState.WAITING
        try:
            async for snapshot in job.updates():
                if snapshot.state is shown:
                    continue
                self._move(shown, snapshot.state)
                shown = snapshot.state
                if shown is JobState.RUNNING and started is None:
                    started = snapshot.elapsed
                    if was_waiting:
                        self._histograms["phases"].labels(self.door, "waiting").observe(started)
        finally:
            if shown is not None and not shown.is_final:
                self._gauges["jobs"].labels(self.door, str(shown)).dec()
        result = await job.result()
        if started is not None:
            running = max(result.elapsed - started, 0.0)
            self._histograms["phases"].labels(self.door, "running").observe(running)

    def _move(self, before: JobState | None, after: JobState) -> None:
        if before is not None and not before.is_final:
            self._gauges["jobs"].labels(self.door, str(before)).dec()
        if after.is_final:
            self._counters["ended"].labels(self.door, str(after)).inc()
        else:
            self._gauges["jobs"].labels(self.door, str(after)).inc()

    def comfy_trace(self) -> aiohttp.TraceConfig:
        """Return a trace for the ComfyUI session: each request counted by route and status."""
        trace = aiohttp.TraceConfig()

        async def ended(
            session: aiohttp.ClientSession,
            context: object,
            params: aiohttp.TraceRequestEndParams,
        ) -> None:
            self.count_comfy(params.method, params.url, str(params.response.status))

        async def failed(
            session: aiohttp.ClientSession,
            context: object,
            params: aiohttp.TraceRequestExceptionParams,
        ) -> None:
            self.count_comfy(params.method, params.url, "error")

        trace.on_request_end.append(ended)
        trace.on_request_exception.append(failed)
        return trace

    def count_comfy(self, method: str, url: object, status: str) -> None:
        """Count one HTTP request to ComfyUI (the trace calls this for each)."""
        server = server_name(str(url))
        path = getattr(url, "path", "/")
        self._counters["comfy_requests"].labels(server, method, route_of(path), status).inc()

    def discord_trace(self) -> aiohttp.TraceConfig:
        """Return a trace for discord.py's session (`http_trace=`): each 429 counted by scope."""
        trace = aiohttp.TraceConfig()

        async def ended(
            session: aiohttp.ClientSession,
            context: object,
            params: aiohttp.TraceRequestEndParams,
        ) -> None:
            if params.response.status == 429:
                scope = params.response.headers.get("X-RateLimit-Scope", "unknown")
                self._counters["rate_limits"].labels(params.method, scope).inc()

        trace.on_request_end.append(ended)
        return trace


class _QueueCollector(Collector):
    """Read the queue and its servers at scrape time (nothing to keep in step)."""

    def __init__(self, queue: JobQueue) -> None:
        self._queue = queue

    def describe(self) -> Iterable[Metric]:
        return ()

    def collect(self) -> Iterable[Metric]:
        families = {
            key: GaugeMetricFamily(spec.name, spec.help, labels=spec.labels)
            for key, spec in SCRAPED.items()
        }
        families["waiting"].add_metric([], self._queue.waiting_count())
        for backend in self._queue.backends:
            server = server_name(backend.url)
            families["in_flight"].add_metric([server], backend.in_flight)
            families["up"].add_metric([server], 1.0 if backend.is_healthy else 0.0)
            families["info"].add_metric([server, backend.health.version or "unknown"], 1.0)
        return tuple(families.values())
