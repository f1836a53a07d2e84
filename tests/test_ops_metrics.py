"""Metrics scraped during real jobs: over `comfycord serve`'s /metrics and the bot's ops port."""

from __future__ import annotations

import argparse
import asyncio
import re
from pathlib import Path

import aiohttp
import pytest

from bot.config import Settings
from bot.discord.client import ComfyBot
from bot.http.serve import HttpOptions
from bot.jobs.logcontext import server_name
from bot.jobs.model import Job
from bot.jobs.progress import JobState
from bot.ops import probe
from bot.ops.families import METRICS
from bot.ops.health import OpsServer, bot_health
from bot.ops.metrics import Metrics, route_of
from tests.discord_env import (  # noqa: F401  # fixtures
    Services,
    env_fixture,
    final_edit,
    services_fixture,
)
from tests.fakes.comfy import FakeComfy
from tests.fakes.discord import FakeDiscord, run_bot
from tests.http_harness import serve_middleware
from tests.ops_scrape import parse, reads, settled, value

ROOT = Path(__file__).resolve().parents[1]
PHASES = "comfycord_job_phase_seconds_count"
BUCKETS = "comfycord_job_phase_seconds_bucket"


@pytest.mark.parametrize(
    ("path", "route"),
    [
        ("/prompt", "/prompt"),
        ("/history/comfycord-0123456789abcdef0123456789abcdef", "/history/{id}"),
        ("/history/4b4f2c1e-8d2a-4a51-9d57-0c3f2f1e9a7b", "/history/{id}"),
        ("/api/jobs/4b4f2c1e-8d2a-4a51-9d57-0c3f2f1e9a7b", "/api/jobs/{id}"),
        ("/upload/image", "/upload/image"),
        ("/system_stats", "/system_stats"),
        ("/view", "/view"),
        ("", "/"),
    ],
)
def test_routes_never_carry_ids(path: str, route: str) -> None:
    assert route_of(path) == route


async def until_state(job: Job, state: JobState) -> None:
    async with asyncio.timeout(5):
        async for snapshot in job.updates():
            if snapshot.state is state:
                return
    raise AssertionError(f"{job} never was {state}")


def test_the_operators_guide_lists_every_metric_with_its_type_and_labels() -> None:
    guide = (ROOT / "docs" / "deploy.md").read_text()
    rows = re.findall(r"^\| `(comfycord_\w+)` \| (\w+) \|([^|]*)\|", guide, re.M)
    documented = {name: (kind, re.findall(r"`(\w+)`", labels)) for name, kind, labels in rows}
    kinds = {"Counter": "counter", "Gauge": "gauge", "Histogram": "histogram"}
    declared = {
        spec.name + ("_total" if spec.kind.__name__ == "Counter" else ""): (
            kinds.get(spec.kind.__name__, "gauge"),
            list(spec.labels),
        )
        for spec in METRICS.values()
    }
    assert documented == declared


async def test_serve_metrics_follow_jobs_servers_and_requests(fake_comfy: FakeComfy) -> None:
    server = server_name(fake_comfy.url)
    async with (
        Metrics("http") as metrics,
        serve_middleware(fake_comfy.url, "slow", metrics=metrics) as h,
        asyncio.timeout(20),
    ):
        fake_comfy.hold()
        ids = [(await (await h.http.post("/queue")).json())["job_id"] for _ in range(3)]
        jobs = [h.jobs.get(job_id) for job_id in ids]
        await fake_comfy.wait_for_prompt(ids[0], "running")
        await fake_comfy.wait_for_prompt(ids[1], "pending")
        await until_state(jobs[0], JobState.RUNNING)
        await until_state(jobs[1], JobState.QUEUED)
        await settled(reads(metrics, "comfycord_jobs", 1, door="http", state="queued"))
        during = parse(await (await h.http.get("/metrics")).text())

        fake_comfy.release()
        for job in jobs:
            await job.result()
        await settled(reads(metrics, PHASES, 3, door="http", phase="running"))
        after = parse(await (await h.http.get("/metrics")).text())

    assert value(during, "comfycord_jobs", door="http", state="running") == 1
    assert value(during, "comfycord_jobs", door="http", state="queued") == 1
    assert value(during, "comfycord_jobs", door="http", state="waiting") == 1
    assert value(during, "comfycord_waiting_jobs") == 1
    assert value(during, "comfycord_prompts_in_flight", server=server) == 2
    assert value(during, "comfycord_server_up", server=server) == 1
    assert value(during, "comfycord_server_info", server=server, version="0.3.64") == 1
    assert value(during, "comfycord_jobs_accepted_total", door="http") == 3
    posted = {"server": server, "method": "POST", "route": "/prompt", "status": "200"}
    assert value(during, "comfycord_comfyui_requests_total", **posted) == 2
    stats = {"server": server, "method": "GET", "route": "/system_stats", "status": "200"}
    assert value(during, "comfycord_comfyui_requests_total", **stats) >= 1

    for state in ("waiting", "queued", "running"):
        assert value(after, "comfycord_jobs", door="http", state=state) == 0
    assert value(after, "comfycord_jobs_ended_total", door="http", state="done") == 3
    assert value(after, "comfycord_prompts_in_flight", server=server) == 0
    assert value(after, "comfycord_comfyui_requests_total", **posted) == 3
    for phase in ("waiting", "running"):
        assert value(after, PHASES, door="http", phase=phase) == 3
        total = value(after, "comfycord_job_phase_seconds_sum", door="http", phase=phase)
        assert total > 0
    assert value(after, BUCKETS, door="http", phase="waiting", le="+Inf") == 3


async def test_serve_metrics_need_the_token_when_one_is_set(fake_comfy: FakeComfy) -> None:
    options = HttpOptions(token="metrics-test-token")
    async with serve_middleware(fake_comfy.url, options=options) as h:
        refused = await h.http.get("/metrics")
        good = await h.http.get("/metrics", headers={"Authorization": "Bearer metrics-test-token"})
        text = await good.text()
    assert refused.status == 401
    assert good.status == 200
    assert good.headers["Content-Type"].startswith("text/plain")
    assert value(parse(text), "comfycord_server_up", server=server_name(fake_comfy.url)) == 1


async def test_the_bot_counts_discord_429s_and_times_delivery(
    fake_discord: FakeDiscord, services: Services, unused_tcp_port: int
) -> None:
    user = fake_discord.add_user("erin")
    fake_discord.inject_429("PATCH", "/webhooks/*/messages/@original", retry_after=0.05)
    async with Metrics("discord") as metrics:
        metrics.watch(services.jobs)
        bot = ComfyBot(
            settings=services.settings,
            jobs=services.jobs,
            guild_ready_timeout=0.05,
            on_delivered=metrics.delivered,
            http_trace=metrics.discord_trace(),
        )
        health = bot_health(services.jobs, bot.is_gateway_connected)
        ops = OpsServer(metrics, health, host="127.0.0.1", port=unused_tcp_port, token="tk" * 8)
        async with ops, run_bot(bot), aiohttp.ClientSession() as http:
            ix = await fake_discord.slash(
                "generate", {"prompt": "x", "workflow": "slow"}, user_id=user
            )
            await fake_discord.wait_for(final_edit(ix), timeout=10)
            base = f"http://127.0.0.1:{ops.port}"
            await settled(reads(metrics, PHASES, 1, door="discord", phase="delivering"))
            async with http.get(f"{base}/metrics") as refused:
                assert refused.status == 401
            headers = {"Authorization": "Bearer " + "tk" * 8}
            async with http.get(f"{base}/metrics", headers=headers) as answer:
                scraped = parse(await answer.text())
            async with http.get(f"{base}/health") as up:
                up_body = await up.json()
                up_status = up.status
        # The bot is closed now: its gateway is gone, the health check says so.
        async with ops, aiohttp.ClientSession() as http, http.get(f"{base}/health") as down:
            down_body = await down.json()
            down_status = down.status

    assert value(scraped, "comfycord_discord_rate_limits_total", method="PATCH", scope="user") == 1
    assert value(scraped, "comfycord_jobs_ended_total", door="discord", state="done") == 1
    assert value(scraped, PHASES, door="discord", phase="waiting") == 1
    assert up_status == 200
    assert up_body["status"] == "ok"
    assert up_body["gateway_connected"] is True
    assert up_body["servers"][0]["up"] is True
    assert down_status == 503
    assert down_body["gateway_connected"] is False


async def test_health_is_degraded_while_no_server_is_up(
    services: Services, fake_comfy: FakeComfy, unused_tcp_port: int
) -> None:
    await fake_comfy.kill()
    await services.backend.check()
    health = bot_health(services.jobs, lambda: True)
    async with Metrics("discord") as metrics:
        ops = OpsServer(metrics, health, host="127.0.0.1", port=unused_tcp_port)
        async with ops, aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{ops.port}/health") as answer:
                body = await answer.json()
            code = await probe.main(argparse.Namespace(url=None, timeout=5.0), _on(ops.port))
    assert answer.status == 503
    assert body["status"] == "degraded"
    assert body["servers"][0]["up"] is False
    assert code == probe.EXIT_UNHEALTHY


def _on(port: int, **env: str) -> Settings:
    return Settings.from_env({"METRICS_PORT": str(port), "METRICS_HOST": "0.0.0.0", **env})


async def test_the_health_command_reads_the_bot_health(
    services: Services, capsys: pytest.CaptureFixture[str], unused_tcp_port: int
) -> None:
    health = bot_health(services.jobs, lambda: True)
    async with Metrics("discord") as metrics:
        async with OpsServer(metrics, health, host="127.0.0.1", port=unused_tcp_port) as ops:
            args = argparse.Namespace(url=None, timeout=5.0)
            ok = await probe.main(args, _on(ops.port, METRICS_TOKEN="t" * 16))
        printed = capsys.readouterr().out
        gone = await probe.main(argparse.Namespace(url=None, timeout=5.0), _on(unused_tcp_port))
        unset = await probe.main(argparse.Namespace(url=None, timeout=5.0), Settings.from_env({}))
    assert ok == probe.EXIT_OK
    assert '"status": "ok"' in printed
    assert gone == probe.EXIT_UNHEALTHY
    assert unset == probe.EXIT_USAGE
    assert "METRICS_PORT" in capsys.readouterr().err


async def test_a_taken_port_is_a_config_error_naming_metrics_port(
    services: Services, unused_tcp_port: int
) -> None:
    health = bot_health(services.jobs, lambda: True)
    async with (
        Metrics("discord") as metrics,
        OpsServer(metrics, health, host="127.0.0.1", port=unused_tcp_port),
    ):
        second = OpsServer(metrics, health, host="127.0.0.1", port=unused_tcp_port)
        with pytest.raises(Exception, match="METRICS_PORT: cannot listen") as raised:
            await second.__aenter__()
    assert type(raised.value).__name__ == "ConfigError"
