"""ComfyUI ends for a test: a checked ComfyBackend on a FakeComfy, a URL nothing listens on."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from bot.comfy.backend import ComfyBackend
from bot.comfy.client import ComfyClient
from bot.comfy.stream import Backoff


@asynccontextmanager
async def checked_backend(
    url: str, *, client_id: str | None = None, **options: Any
) -> AsyncIterator[ComfyBackend]:
    """Open a client and a backend (`options`; a 0.02-0.2 s backoff unless given) on `url`.

    The block starts once the backend's WebSocket is up and its first health check answered.
    """
    options.setdefault("backoff", Backoff(0.02, 0.2))
    async with (
        ComfyClient(url, client_id=client_id, timeout=5) as client,
        ComfyBackend(client, **options) as backend,
    ):
        async with asyncio.timeout(5):
            await backend.stream.wait_connected()
            await backend.check()
        yield backend


def closed_url() -> str:
    """Return the URL of a loopback port nothing listens on (bound, then let go)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"
