"""The model, UNET and LoRA files the ComfyUI servers offer, for autocomplete, briefly cached.

One /object_info per server at most every `ttl` seconds: autocomplete fires on every key press,
and a large install's /object_info is half a megabyte.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from bot.comfy.backend import ComfyBackend
from bot.comfy.errors import ComfyError
from bot.workflows.choices import files_of

log = logging.getLogger(__name__)

TTL = 60.0
ANSWER_WITHIN = 2.0  # seconds: Discord drops an autocomplete answer after three


class ModelCatalog:
    """Union of the file lists of every healthy server, kept for `ttl` seconds."""

    def __init__(
        self,
        backends: Sequence[ComfyBackend],
        *,
        ttl: float = TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._backends = tuple(backends)
        self._ttl = ttl
        self._clock = clock
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}
        # One request per server at a time: key presses arrive faster than /object_info answers.
        self._locks: dict[str, asyncio.Lock] = {}

    def __repr__(self) -> str:
        return f"ModelCatalog(servers={len(self._backends)}, cached={len(self._cache)})"

    async def names(self, kind: str) -> list[str]:
        """Return the files of `kind` (checkpoint, unet, lora) the healthy servers offer.

        While none is known to be healthy (just started, or all down), every server is asked.
        """
        asked = [b for b in self._backends if b.is_healthy] or list(self._backends)
        infos = await asyncio.gather(*(self._info(b) for b in asked))
        found: dict[str, None] = {}
        for info in infos:
            found.update(dict.fromkeys(files_of(info, kind)))
        return list(found)

    async def _info(self, backend: ComfyBackend) -> dict[str, Any]:
        async with self._locks.setdefault(backend.url, asyncio.Lock()):
            return await self._fetch(backend)

    async def _fetch(self, backend: ComfyBackend) -> dict[str, Any]:
        cached = self._cache.get(backend.url)
        if cached is not None and self._clock() - cached[0] < self._ttl:
            return cached[1]
        try:
            async with asyncio.timeout(ANSWER_WITHIN):
                info = await backend.client.object_info()
        except (ComfyError, TimeoutError) as exc:
            log.info("no model list from %s: %s", backend.url, exc)
            return cached[1] if cached is not None else {}
        self._cache[backend.url] = (self._clock(), info)
        return info
