"""Shared pytest fixtures: loopback fakes of the services the bot talks to."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.fakes.comfy import FakeComfy
from tests.fakes.discord import FakeDiscord


@pytest.fixture
async def fake_discord(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeDiscord]:
    """Start a FakeDiscord and point discord.py's REST base and gateway at it."""
    async with FakeDiscord() as fake:
        fake.install(monkeypatch)
        yield fake
    assert not fake.server_errors, fake.server_errors


@pytest.fixture
async def fake_comfy() -> AsyncIterator[FakeComfy]:
    """Start a FakeComfy on a random local port; fail the test if the fake itself crashed."""
    async with FakeComfy() as fake:
        yield fake
    assert not fake.errors, fake.errors


def pytest_configure(config: pytest.Config) -> None:
    """Register the bad-input suite's marker."""
    config.addinivalue_line("markers", "bad_input: a case of the table-driven bad-input suite")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print how many bad-input cases ran, per front door (module)."""
    doors: dict[str, int] = {}
    for outcome in ("passed", "failed"):
        for report in terminalreporter.stats.get(outcome, []):
            if report.when == "call" and "bad_input" in report.keywords:
                door = report.nodeid.split("::")[0].rsplit("test_bad_input_", 1)[-1]
                doors[door.removesuffix(".py")] = doors.get(door.removesuffix(".py"), 0) + 1
    if doors:
        parts = ", ".join(f"{door} {count}" for door, count in sorted(doors.items()))
        terminalreporter.write_line(f"bad-input suite: {sum(doors.values())} cases tried ({parts})")
