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
