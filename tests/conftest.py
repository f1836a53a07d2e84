"""Shared pytest fixtures: loopback fakes of the services the bot talks to."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.fakes.comfy import FakeComfy
from tests.fakes.discord import FakeDiscord

COMFY_VERSIONS = ("0.3.64", "0.38")
"""The ComfyUI versions ComfyCord supports; the core's tests run against a fake of each."""


@pytest.fixture
async def fake_discord(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeDiscord]:
    """Start a FakeDiscord and point discord.py's REST base and gateway at it."""
    async with FakeDiscord() as fake:
        fake.install(monkeypatch)
        yield fake
    assert not fake.server_errors, fake.server_errors


@pytest.fixture
def comfy_version() -> str:
    """Return the ComfyUI version `fake_comfy` answers as; core test modules override this
    with `both_versions` to run against every supported version."""
    return "0.3.64"


@pytest.fixture(params=COMFY_VERSIONS)
def both_versions(request: pytest.FixtureRequest) -> str:
    """Return each supported ComfyUI version in turn (a parametrized fixture)."""
    version: str = request.param
    return version


@pytest.fixture
async def fake_comfy(comfy_version: str) -> AsyncIterator[FakeComfy]:
    """Start a FakeComfy on a random local port; fail the test if the fake itself crashed."""
    async with FakeComfy(version=comfy_version) as fake:
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
