"""Log lines: JSON that parses with the job's fields, readable text by default, no secrets."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.comfy.backend import ComfyBackend
from bot.comfy.client import ComfyClient
from bot.config import Settings
from bot.jobs import logcontext
from bot.jobs.model import GenerationRequest
from bot.jobs.queue import JobQueue
from bot.ops.logs import MASK, JsonFormatter, Redactor, TextFormatter, formatter_for
from bot.workflows.library import WorkflowLibrary
from tests.fakes.comfy import FakeComfy

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GabcDE.abcdefghijklmnopqrstuvwxyz0123456789AB"
API_TOKEN = "http-api-token-0123456789"


def record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord("bot.test", logging.INFO, __file__, 1, message, args, None)
    for key, value in extra.items():
        setattr(made, key, value)
    return made


def settings(**env: str) -> Settings:
    return Settings.from_env({"DISCORD_TOKEN": TOKEN, "HTTP_API_TOKEN": API_TOKEN, **env})


def test_json_is_one_object_per_line_with_the_given_fields() -> None:
    formatter = formatter_for(settings(LOG_FORMAT="json"))
    line = formatter.format(record("finished %s in %.1fs", "job-1", 2.5, job_id="job-1"))
    entry = json.loads(line)
    assert "\n" not in line
    assert entry["message"] == "finished job-1 in 2.5s"
    assert entry["level"] == "INFO"
    assert entry["logger"] == "bot.test"
    assert entry["job_id"] == "job-1"
    assert entry["time"].endswith("+00:00")


async def test_json_lines_carry_the_running_tasks_fields() -> None:
    formatter = JsonFormatter(Redactor())

    async def job_task(job_id: str) -> dict[str, str]:
        logcontext.bind(job_id=job_id, prompt_id=job_id, server="http://gpu:8188")
        await asyncio.sleep(0)  # the other task binds its own fields meanwhile
        return json.loads(formatter.format(record("working")))

    first, second = await asyncio.gather(job_task("a"), job_task("b"))
    outside = json.loads(formatter.format(record("idle")))
    assert (first["job_id"], first["prompt_id"], first["server"]) == ("a", "a", "http://gpu:8188")
    assert second["job_id"] == "b"
    assert "job_id" not in outside


def test_unknown_fields_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown log fields"):
        logcontext.bind(user_token="x")


def test_server_names_lose_their_passwords() -> None:
    assert logcontext.server_name("https://admin:hunter2@gpu.example:8443/") == (
        "https://gpu.example:8443"
    )


def test_the_default_is_readable_text() -> None:
    formatter = formatter_for(settings())
    assert isinstance(formatter, TextFormatter)
    line = formatter.format(record("accepted %s", "job-1"))
    assert line.endswith("INFO     bot.test: accepted job-1")


SECRET_MESSAGES = [
    f"login with {TOKEN}",
    f"serve with token {API_TOKEN}",
    "connecting to http://admin:hunter2-password@gpu:8188/ws",
    "PATCH /api/v10/webhooks/1234567890/aW50ZXJhY3Rpb246MTIzNDU2Nzg5MDpmYWtl/messages/@original",
    "POST /api/v10/interactions/1234567890/aW50ZXJhY3Rpb246MTIzNDU2Nzg5MDpmYWtl/callback",
    "sent Authorization: Bearer abcdefghijklmnop",
    "GET /view?filename=x.png&token=abcdef123456",
    "a token of another bot: MTAxMjM0NTY3ODkwMTIzNDU2.GfAkEt.abcdefghijklmnopqrstuvwxyz0123",
]


@pytest.mark.parametrize("log_format", ["text", "json"])
@pytest.mark.parametrize("message", SECRET_MESSAGES)
def test_secrets_never_reach_a_log_line(log_format: str, message: str) -> None:
    formatter = formatter_for(settings(LOG_FORMAT=log_format))
    line = formatter.format(record("%s", message))
    for secret in (
        TOKEN,
        API_TOKEN,
        "hunter2",
        "aW50ZXJhY3Rpb246",
        "abcdefghijklmnop",
        "abcdef123456",
        "GfAkEt",
    ):
        assert secret not in line
    assert MASK in line


@pytest.mark.parametrize(
    "message",
    [
        "Bot application commands synced to 3 guilds",
        "submitted comfycord-0123456789abcdef to http://127.0.0.1:8188",
        "saved outputs/ComfyCord_00042_.png (1.2 MiB)",
    ],
)
def test_ordinary_lines_are_left_alone(message: str) -> None:
    assert formatter_for(settings()).format(record("%s", message)).endswith(message)


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_secrets_in_a_traceback_are_masked(log_format: str) -> None:
    formatter = formatter_for(settings(LOG_FORMAT=log_format))
    try:
        raise RuntimeError(f"refused {TOKEN}")
    except RuntimeError:
        failing = logging.LogRecord("bot", logging.ERROR, __file__, 1, "boom", (), None)
        failing.exc_info = sys.exc_info()
    line = formatter.format(failing)
    assert TOKEN not in line
    assert "RuntimeError: refused" in line
    if log_format == "json":
        assert "RuntimeError" in json.loads(line)["exception"]


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter_for(settings(LOG_FORMAT="json")))
    logger = logging.getLogger("bot")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


async def test_a_jobs_log_lines_name_its_job_prompt_and_server(
    fake_comfy: FakeComfy, json_lines: io.StringIO
) -> None:
    library = WorkflowLibrary.load(ROOT / "workflows")
    slow = str(ROOT / "tests" / "fixtures" / "workflows" / "slow.json")
    async with (
        ComfyClient(fake_comfy.url, timeout=5) as client,
        ComfyBackend(client) as backend,
        JobQueue([backend], library) as queue,
        asyncio.timeout(10),
    ):
        await backend.stream.wait_connected()
        await backend.check()
        job = queue.submit(GenerationRequest(requester="logs", workflow=slow))
        await job.result()

    entries = [json.loads(line) for line in json_lines.getvalue().splitlines()]
    about_job = [e for e in entries if e.get("job_id") == job.id]
    messages = {e["message"] for e in about_job}
    assert any(m.startswith("accepted ") for m in messages), messages
    submitted = next(e for e in about_job if e["message"].startswith("submitted "))
    assert submitted["logger"] == "bot.comfy.backend"
    assert submitted["prompt_id"] == job.id
    assert submitted["server"] == logcontext.server_name(fake_comfy.url)
    assert any(m.startswith("finished ") for m in messages), messages
