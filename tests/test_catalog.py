"""ModelCatalog: the servers' model lists for autocomplete, one /object_info per server and TTL."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.jobs.catalog import ModelCatalog
from tests.discord_env import library_dir, make_settings, open_services
from tests.fakes.comfy import FakeComfy

MODELS = {"checkpoints": ["a.safetensors", "b.safetensors"], "loras": ["l.safetensors"]}


async def test_names_come_from_object_info_cached_for_the_ttl(tmp_path: Path) -> None:
    now = [0.0]
    async with FakeComfy(models=MODELS) as fake:
        settings = make_settings(fake.url, library_dir(tmp_path))
        async with open_services(settings) as services:
            catalog = ModelCatalog(services.backends, ttl=60, clock=lambda: now[0])
            together = await asyncio.gather(*(catalog.names("checkpoint") for _ in range(5)))
            loras = await catalog.names("lora")
            fetched = [c for c in services.comfy_calls.calls if c[1] == "/object_info"]
            now[0] = 61.0
            await catalog.names("unet")
            refetched = [c for c in services.comfy_calls.calls if c[1] == "/object_info"]
    assert together == [["a.safetensors", "b.safetensors"]] * 5
    assert loras == ["l.safetensors"]
    assert len(fetched) == 1  # five concurrent key presses, one request
    assert len(refetched) == 2


async def test_an_unreachable_server_gives_no_names(tmp_path: Path) -> None:
    async with FakeComfy(models=MODELS) as fake:
        settings = make_settings(fake.url, library_dir(tmp_path))
        async with open_services(settings) as services:
            catalog = ModelCatalog(services.backends)
            assert await catalog.names("checkpoint") == ["a.safetensors", "b.safetensors"]
            await fake.close()
            catalog_without_cache = ModelCatalog(services.backends, ttl=0)
            assert await catalog_without_cache.names("checkpoint") == []
