"""Helpers of the HTTP middleware tests: the app on a JobQueue over FakeComfy, SSE reading."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient, TestServer
from aiohttp.web_runner import BaseRunner
from PIL import Image

from bot.comfy.backend import ComfyBackend
from bot.comfy.stream import Backoff
from bot.config import Settings
from bot.http.runner import JsonErrorRunner
from bot.http.serve import HttpOptions, create_app
from bot.jobs.engine import Engine
from bot.jobs.queue import JobQueue
from bot.ops.metrics import Metrics
from bot.workflows.library import WorkflowLibrary, load_workflow
from tests.fakes.comfy import FakeComfy

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "workflows"
HTTP_TEXT = Path(__file__).resolve().parent / "fixtures" / "http" / "http_text.json"
DEMO = Path(__file__).resolve().parent.parent / "workflows" / "demo.json"
MOVING = Path(__file__).resolve().parent / "fixtures" / "media" / "moving.json"
EXTRA = {"http_text": HTTP_TEXT, "demo": DEMO, "moving": MOVING}


def library() -> WorkflowLibrary:
    """Return the runner's test workflows, `http_text`, `moving` and the model-free `demo`."""
    workflows = {w.name: w for w in WorkflowLibrary.load(FIXTURES)}
    extra = {name: load_workflow(path) for name, path in EXTRA.items()}
    return WorkflowLibrary({**workflows, **extra})


def png(width: int = 8, height: int = 6, color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    """Return a small PNG."""
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, "PNG")
    return buffer.getvalue()


async def json_error(response: Any, status: int, code: str) -> str:
    """Assert the answer is a JSON error of `status` and `code` with a message; return it."""
    assert response.status == status, await response.text()
    assert response.content_type == "application/json"
    body = await response.json()
    assert body["error"]["code"] == code, body
    message: str = body["error"]["message"]
    assert message
    return message


def assert_nothing_sent(fake: FakeComfy) -> None:
    """Assert FakeComfy got neither a prompt nor an upload."""
    assert ("POST", "/prompt") not in fake.requests
    assert ("POST", "/upload/image") not in fake.requests


def image_form(data: bytes, filename: str = "in.png", **fields: str) -> aiohttp.FormData:
    """Return a multipart form with the `image` file field (and any other fields)."""
    form = aiohttp.FormData()
    form.add_field("image", data, filename=filename, content_type="image/png")
    for name, value in fields.items():
        form.add_field(name, value)
    return form


class JsonErrorTestServer(TestServer):
    """A TestServer on the runner `comfycord serve` uses (JSON errors for unparsable requests)."""

    async def _make_runner(self, **kwargs: Any) -> BaseRunner[Any]:
        return JsonErrorRunner(self.app, **kwargs)


@dataclass
class Harness:
    """The middleware under test, its client, and the JobQueue and backend it runs on."""

    http: TestClient[Any, Any]
    server: TestServer
    jobs: JobQueue
    backend: ComfyBackend


@asynccontextmanager
async def serve_middleware(
    comfy_url: str,
    workflow: str = "http_text",
    options: HttpOptions | None = None,
    *,
    max_per_user: int = 10,
    max_waiting: int = 1000,
    wait_connected: bool = True,
    metrics: Metrics | None = None,
) -> AsyncIterator[Harness]:
    """Serve the middleware on 127.0.0.1 around a JobQueue connected to `comfy_url`.

    With `metrics`, the ComfyUI session carries their trace and the app answers /metrics
    with them (as `comfycord serve` does); without, the app keeps metrics of its own.
    """
    lib = library()
    settings = Settings.from_env({"COMFYUI_URL": comfy_url, "REQUEST_TIMEOUT": "5"})
    traces = [metrics.comfy_trace()] if metrics is not None else []
    async with aiohttp.ClientSession(trace_configs=traces) as session:
        engine = Engine(
            settings,
            lib,
            session=session,
            backoff=Backoff(0.05, 0.2),
            max_per_user=max_per_user,
            max_waiting=max_waiting,
        )
        async with engine:
            backend = engine.backends[0]
            if wait_connected:
                async with asyncio.timeout(5):
                    await backend.stream.wait_connected()
                    assert (await backend.check()).is_up
            app = create_app(engine.jobs, lib.get(workflow), options, metrics=metrics)
            server = JsonErrorTestServer(app, host="127.0.0.1")
            async with TestClient(server) as http:
                yield Harness(http, server, engine.jobs, backend)


async def sse(response: aiohttp.ClientResponse) -> AsyncIterator[tuple[str, Any]]:
    """Yield (event, data) of a Server-Sent Events stream; comments as ("comment", text)."""
    event, data = "message", []
    async for raw in response.content:
        line = raw.decode().rstrip("\r\n")
        if line.startswith(":"):
            yield "comment", line[1:].strip()
            continue
        if not line:
            if data:
                yield event, json.loads("\n".join(data))
            event, data = "message", []
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)


async def until_final(response: aiohttp.ClientResponse, job_id: str) -> list[dict[str, Any]]:
    """Read job events until `job_id` ends; return every payload seen for it."""
    seen: list[dict[str, Any]] = []
    async for event, data in sse(response):
        if event == "job" and data["job_id"] == job_id:
            seen.append(data)
            if data["state"] in ("done", "failed", "cancelled", "lost"):
                return seen
    raise AssertionError(f"the event stream ended before {job_id} did: {seen}")
