"""`comfycord bot` as a process: /health and /metrics on METRICS_PORT, LOG_FORMAT=json lines.

The bot runs in its own process (tests/bot_launcher.py) against this process's fake Discord and
fake ComfyUI; the test scrapes it while a job runs, as Prometheus would.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from bot.jobs.logcontext import server_name
from tests.fakes.comfy import FakeComfy
from tests.fakes.discord import FakeDiscord
from tests.ops_scrape import Samples, parse, value
from tests.test_discord_kill import START_TIMEOUT, bot_env, bot_process, edit_of, generate

SCRAPE_PAUSE = 0.05  # seconds between scrapes of another process, as a (fast) Prometheus would


async def scrape_until(
    http: aiohttp.ClientSession, url: str, predicate: Callable[[Samples], bool]
) -> Samples:
    """Scrape `url` until `predicate` holds for what it shows (the bot is another process)."""
    async with asyncio.timeout(START_TIMEOUT):
        while True:
            async with http.get(url) as answer:
                samples = parse(await answer.text())
            if predicate(samples):
                return samples
            await asyncio.sleep(SCRAPE_PAUSE)


async def healthy(http: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    """Ask /health until it says ok (the first server check follows the gateway login)."""
    async with asyncio.timeout(START_TIMEOUT):
        while True:
            async with http.get(url) as answer:
                body: dict[str, Any] = await answer.json()
            if answer.status == 200:
                return body
            await asyncio.sleep(SCRAPE_PAUSE)


async def test_the_bot_process_serves_health_and_metrics_and_logs_json(
    fake_discord: FakeDiscord, fake_comfy: FakeComfy, tmp_path: Path, unused_tcp_port: int
) -> None:
    env = bot_env(fake_discord, fake_comfy, tmp_path) | {
        "METRICS_PORT": str(unused_tcp_port),
        "LOG_FORMAT": "json",
    }
    log = tmp_path / "bot.log"
    base = f"http://127.0.0.1:{unused_tcp_port}"
    server = server_name(fake_comfy.url)
    user = fake_discord.add_user("frank")
    fake_comfy.hold()
    async with bot_process(fake_discord, env, log), aiohttp.ClientSession() as http:
        health = await healthy(http, f"{base}/health")
        ix, job_id = await generate(fake_discord, user, "scraped while it runs")
        await fake_comfy.wait_for_prompt(job_id, "running")
        during = await scrape_until(
            http,
            f"{base}/metrics",
            lambda s: value(s, "comfycord_jobs", door="discord", state="running") == 1,
        )
        fake_comfy.release()
        await fake_discord.wait_for(edit_of(ix, is_final=True), timeout=START_TIMEOUT)
        after = await scrape_until(
            http,
            f"{base}/metrics",
            lambda s: (
                value(s, "comfycord_job_phase_seconds_count", door="discord", phase="delivering")
                == 1
            ),
        )

    assert health["gateway_connected"] is True
    assert health["servers"] == [
        {"server": server, "up": True, "version": "0.3.64", "in_flight": 0}
    ]
    assert value(during, "comfycord_prompts_in_flight", server=server) == 1
    assert value(during, "comfycord_server_up", server=server) == 1
    posted = {"server": server, "method": "POST", "route": "/prompt", "status": "200"}
    assert value(during, "comfycord_comfyui_requests_total", **posted) == 1
    assert value(after, "comfycord_jobs_ended_total", door="discord", state="done") == 1
    assert value(after, "comfycord_jobs", door="discord", state="running") == 0

    lines = [line for line in log.read_text().splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    about_job = [e for e in entries if e.get("job_id") == job_id]
    submitted = next(e for e in about_job if e["message"].startswith("submitted "))
    assert submitted["prompt_id"] == job_id
    assert submitted["server"] == server
    delivered = next(e for e in about_job if e["message"].startswith("delivered "))
    assert delivered["guild_id"] == str(fake_discord.guild_id)
    assert any(e["logger"] == "bot.ops.health" for e in entries)
    text = log.read_text()
    assert env["DISCORD_TOKEN"] not in text
    assert ix.token not in text
