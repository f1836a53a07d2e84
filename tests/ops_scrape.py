"""Helpers of the ops tests: parse a Prometheus scrape, wait a few loop turns for followers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from prometheus_client.parser import text_string_to_metric_families

from bot.ops.metrics import Metrics

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    """Return every sample of a scrape: {(name, labels): value} (labels as a frozenset)."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """Return one sample's value, 0.0 when absent (as Prometheus reads a missing series)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def reads(metrics: Metrics, name: str, expected: float, **labels: str) -> Callable[[], bool]:
    """Return a check that a scrape of `metrics` now shows `expected` for one sample."""
    return lambda: value(parse(metrics.scrape().decode()), name, **labels) == expected


async def settled(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Yield to the event loop (no fixed sleep) until `predicate` holds; fail after `timeout`.

    A job's follower is woken by the same change the test waited for and records within a few
    turns of the loop; the timeout only keeps a bug from hanging the test.
    """
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0)
