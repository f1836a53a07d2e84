"""Every metric ComfyCord exposes, declared once: its kind, name, help text, labels, buckets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily

# Seconds: from a quick model-free job to a long video workflow, or a long line.
PHASE_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600)


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One metric: its kind, name, help text, label names and (a histogram's) buckets."""

    kind: type[Counter] | type[Gauge] | type[Histogram] | type[GaugeMetricFamily]
    name: str
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()


# Every metric, by the key the code uses. A GaugeMetricFamily is read at scrape time.
METRICS: Final[dict[str, MetricSpec]] = {
    "jobs": MetricSpec(
        Gauge,
        "comfycord_jobs",
        "Jobs not yet ended, by state (waiting, queued, running) and front door.",
        ("door", "state"),
    ),
    "accepted": MetricSpec(
        Counter,
        "comfycord_jobs_accepted",
        "Jobs the queue took (submitted, or adopted after a restart), by front door.",
        ("door",),
    ),
    "ended": MetricSpec(
        Counter,
        "comfycord_jobs_ended",
        "Jobs that ended, by final state and front door.",
        ("door", "state"),
    ),
    "phases": MetricSpec(
        Histogram,
        "comfycord_job_phase_seconds",
        "Time jobs spent waiting (accepted to running), running (to the result, outputs"
        " downloaded) and delivering (result to posted on Discord), by front door.",
        ("door", "phase"),
        PHASE_BUCKETS,
    ),
    "rate_limits": MetricSpec(
        Counter,
        "comfycord_discord_rate_limits",
        "429 answers from Discord, by method and X-RateLimit-Scope.",
        ("method", "scope"),
    ),
    "comfy_requests": MetricSpec(
        Counter,
        "comfycord_comfyui_requests",
        "HTTP requests to ComfyUI, by server, method, route and status ('error': no answer).",
        ("server", "method", "route", "status"),
    ),
    "waiting": MetricSpec(
        GaugeMetricFamily,
        "comfycord_waiting_jobs",
        "Jobs in our own queue, not yet sent to any ComfyUI server.",
    ),
    "in_flight": MetricSpec(
        GaugeMetricFamily,
        "comfycord_prompts_in_flight",
        "Our prompts in a server's ComfyUI queue or running there.",
        ("server",),
    ),
    "up": MetricSpec(
        GaugeMetricFamily,
        "comfycord_server_up",
        "1 when a server takes work (WebSocket open and /system_stats answered), else 0.",
        ("server",),
    ),
    "info": MetricSpec(
        GaugeMetricFamily,
        "comfycord_server_info",
        "ComfyUI version of each server as its last health check found it (value 1).",
        ("server", "version"),
    ),
}
WRAPPED = {key: spec for key, spec in METRICS.items() if spec.kind is not GaugeMetricFamily}
SCRAPED = {key: spec for key, spec in METRICS.items() if spec.kind is GaugeMetricFamily}


def make(spec: MetricSpec, registry: CollectorRegistry) -> Counter | Gauge | Histogram:
    """Create one metric kept in `registry`, as its spec says."""
    if spec.kind is Histogram:
        return Histogram(spec.name, spec.help, spec.labels, buckets=spec.buckets, registry=registry)
    if spec.kind is Counter or spec.kind is Gauge:
        return spec.kind(spec.name, spec.help, spec.labels, registry=registry)
    raise TypeError(f"{spec.name} is read at scrape time, not kept")
