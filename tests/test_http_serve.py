"""`comfycord serve`: the token rule, startup checks, the OpenAPI document, a real run."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import socket
from pathlib import Path

import aiohttp
import pytest

from bot import cli
from bot.config import ConfigError, Settings
from bot.http.serve import EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE, HttpOptions, main
from tests.fakes.comfy import FakeComfy
from tests.http_harness import DEMO, FIXTURES, serve_middleware

HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def _args(**given: object) -> argparse.Namespace:
    values: dict[str, object] = {
        "host": None,
        "port": None,
        "workflow": None,
        "auto_execute": None,
    }
    return argparse.Namespace(**{**values, **given})


def _settings(**env: str) -> Settings:
    return Settings.from_env({"WORKFLOWS_DIR": str(DEMO.parent), **env})


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_beyond_loopback_without_token_refuses_to_start() -> None:
    with pytest.raises(ConfigError) as caught:
        await main(_args(host="0.0.0.0"), _settings(COMFYUI_URL="http://127.0.0.1:1"))
    assert "HTTP_API_TOKEN" in caught.value.problems[0]


def test_cli_exits_2_and_says_why(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for key in list(os.environ):
        if key.startswith(("HTTP_", "COMFYUI_")):
            monkeypatch.delenv(key)
    code = cli.main(["--env-file", str(tmp_path / "none.env"), "serve", "--host", "0.0.0.0"])
    assert code == 2
    assert "HTTP_API_TOKEN: required when HTTP_HOST is '0.0.0.0'" in capsys.readouterr().err


async def test_token_is_required_on_every_route_but_health(fake_comfy: FakeComfy) -> None:
    async with serve_middleware(fake_comfy.url, options=HttpOptions(token="s3cret-token")) as h:
        missing = await h.http.get("/workflow")
        wrong = await h.http.get("/workflow", headers={"Authorization": "Bearer nope"})
        basic = await h.http.get("/workflow", headers={"Authorization": "Basic s3cret-token"})
        unknown = await h.http.get("/nowhere")
        good = await h.http.get("/workflow", headers={"Authorization": "Bearer s3cret-token"})
        health = await h.http.get("/health")
        spec = await (
            await h.http.get("/openapi.json", headers={"Authorization": "Bearer s3cret-token"})
        ).json()
        for answer in (missing, wrong, basic, unknown):
            assert answer.status == 401
            assert answer.headers["WWW-Authenticate"] == "Bearer"
            assert (await answer.json())["error"]["code"] == "unauthorized"
    assert good.status == 200
    assert health.status == 200
    assert spec["security"] == [{"bearer": []}]
    assert spec["paths"]["/health"]["get"]["security"] == []


async def test_openapi_describes_exactly_the_routes(fake_comfy: FakeComfy) -> None:
    async with serve_middleware(fake_comfy.url) as h:
        answer = await h.http.get("/openapi.json")
        spec = await answer.json()
        routes = {
            (route.method.lower(), route.resource.canonical)
            for route in h.server.app.router.routes()
            if route.resource is not None
        }
    assert answer.status == 200
    assert spec["openapi"].startswith("3.1")
    documented = {
        (method, path)
        for path, item in spec["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }
    assert routes == documented
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            assert operation["responses"], (method, path)
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path":
                    assert "{" + parameter["name"] + "}" in path


async def test_startup_exits_3_when_comfyui_is_unreachable(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = _settings(COMFYUI_URL=f"http://127.0.0.1:{_free_port()}", HTTP_WORKFLOW="demo")
    with caplog.at_level(logging.ERROR):
        assert await main(_args(port=_free_port()), settings) == EXIT_UNREACHABLE
    assert "is unreachable" in caplog.text
    assert "Start ComfyUI" in caplog.text


async def test_startup_exits_2_for_a_workflow_the_server_cannot_run(
    fake_comfy: FakeComfy, caplog: pytest.LogCaptureFixture
) -> None:
    settings = _settings(COMFYUI_URL=fake_comfy.url, HTTP_WORKFLOW="txt2img")
    with caplog.at_level(logging.ERROR):
        assert await main(_args(port=_free_port()), settings) == EXIT_USAGE
    assert "cannot run txt2img.json" in caplog.text
    assert "sd_xl_base_1.0.safetensors" in caplog.text
    assert ("POST", "/prompt") not in fake_comfy.requests


async def test_startup_exits_2_for_an_unknown_workflow(caplog: pytest.LogCaptureFixture) -> None:
    settings = _settings(COMFYUI_URL="http://127.0.0.1:1")
    with caplog.at_level(logging.ERROR):
        assert await main(_args(workflow="nope"), settings) == EXIT_USAGE
    assert "No workflow 'nope'" in caplog.text
    assert "demo" in caplog.text


class _Started(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.event = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("Serving workflow"):
            self.event.set()


async def test_serve_runs_a_workflow_file_until_sigterm(fake_comfy: FakeComfy) -> None:
    port = _free_port()
    settings = _settings(COMFYUI_URL=fake_comfy.url)
    started = _Started()
    logger = logging.getLogger("bot.http.serve")
    logger.addHandler(started)
    logger.setLevel(logging.INFO)
    workflow = str(FIXTURES / "slow.json")
    server = asyncio.create_task(main(_args(port=port, workflow=workflow), settings))
    try:
        async with asyncio.timeout(10):
            await started.event.wait()
            async with aiohttp.ClientSession() as http:
                async with http.get(f"http://127.0.0.1:{port}/health") as answer:
                    health = await answer.json()
                async with http.post(f"http://127.0.0.1:{port}/queue") as answer:
                    job = await answer.json()
            os.kill(os.getpid(), signal.SIGTERM)
            assert await server == EXIT_OK
    finally:
        logger.removeHandler(started)
        logger.setLevel(logging.NOTSET)
        server.cancel()
    assert health["workflow"] == "slow"
    assert job["state"] == "waiting"
