"""Strange answers from ComfyUI: each is a ComfyError with a message, and no job hangs on one."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from bot.comfy.backend import CancelResult, ComfyBackend
from bot.comfy.client import ComfyClient
from bot.comfy.errors import ComfyError, PromptRejected, ProtocolError
from bot.comfy.stream import Backoff
from bot.errors import user_message
from bot.images import ImageFile
from bot.jobs.model import GenerationRequest
from bot.jobs.progress import JobState
from bot.jobs.queue import JobQueue
from bot.workflows.library import WorkflowLibrary
from tests.comfy_prompts import slow_prompt
from tests.fakes.comfy import FakeComfy

REPO = Path(__file__).resolve().parent.parent
SLOW = str(REPO / "tests" / "fixtures" / "workflows" / "slow.json")
HTML = "<html><body><h1>502 Bad Gateway</h1></body></html>"


@pytest.fixture
def comfy_version(both_versions: str) -> str:
    return both_versions


@pytest.fixture
async def comfy(fake_comfy: FakeComfy) -> AsyncIterator[ComfyClient]:
    async with ComfyClient(fake_comfy.url, timeout=5) as client:
        yield client


async def test_a_400_with_a_plain_error_string_is_a_rejection(
    comfy: ComfyClient, fake_comfy: FakeComfy
):
    # Older servers and forks: `error` a string, `node_errors` a list.
    body = {"error": "no prompt", "node_errors": []}
    fake_comfy.script.answer("POST", "/prompt", status=400, json_body=body)

    with pytest.raises(PromptRejected) as caught:
        await comfy.submit(slow_prompt(1))

    assert caught.value.message == "no prompt"
    assert [e.message for e in caught.value.node_errors] == ["no prompt"]
    assert user_message(caught.value).startswith("ComfyUI refused the workflow: no prompt")


@pytest.mark.parametrize(
    ("method", "path", "answer", "message"),
    [
        ("POST", "/prompt", {"json_body": {}}, "the answer of POST /prompt has no 'prompt_id'"),
        ("POST", "/prompt", {"text": "OK"}, "/prompt answered something that is not JSON: 'OK'"),
        ("POST", "/prompt", {"json_body": [1]}, "the answer of POST /prompt is not a JSON object"),
        (
            "POST",
            "/upload/image",
            {"json_body": {"filename": "x.png"}},
            "the answer of /upload/image has no 'name'",
        ),
        (
            "GET",
            "/system_stats",
            {"json_body": {"system": "x"}},
            "/system_stats: 'system' is not an object but \"x\"",
        ),
        ("GET", "/queue", {"text": HTML}, "/queue answered something that is not JSON"),
        ("GET", "/queue", {"json_body": {"queue_running": 3}}, "unexpected /queue answer"),
        ("GET", "/history/x", {"json_body": ["x"]}, "/history is not a JSON object"),
        ("GET", "/object_info", {"json_body": "nodes"}, "/object_info is not a JSON object"),
    ],
    ids=[
        "prompt-empty",
        "prompt-text",
        "prompt-list",
        "upload-no-name",
        "stats-system-string",
        "queue-html",
        "queue-wrong-shape",
        "history-list",
        "object-info-string",
    ],
)
async def test_a_strange_answer_is_a_protocol_error_with_a_message(
    comfy: ComfyClient,
    fake_comfy: FakeComfy,
    method: str,
    path: str,
    answer: dict[str, Any],
    message: str,
):
    fake_comfy.script.answer(method, path, **answer)
    calls = {
        "/prompt": lambda: comfy.submit(slow_prompt(2)),
        "/upload/image": lambda: comfy.upload_image(b"png", "cat.png"),
        "/system_stats": comfy.system_stats,
        "/queue": comfy.queue,
        "/history/x": lambda: comfy.history("x"),
        "/object_info": comfy.object_info,
    }

    with pytest.raises(ProtocolError) as caught:
        await calls[path]()

    assert message in str(caught.value)


async def test_a_strange_job_record_is_a_protocol_error(fake_comfy: FakeComfy, comfy: ComfyClient):
    fake_comfy.script.answer("GET", "/api/jobs/x", json_body={"status": 5})
    with pytest.raises(ProtocolError, match="the job record of x has a non-string"):
        await comfy.job("x")
    fake_comfy.script.answer("GET", "/api/jobs/x", json_body={"status": "exploded"})
    with pytest.raises(ProtocolError, match="unknown status 'exploded'"):
        await comfy.job("x")


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 4), (1, 2, 3)).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
async def queue(fake_comfy: FakeComfy) -> AsyncIterator[JobQueue]:
    library = WorkflowLibrary.load(REPO / "workflows")
    async with (
        ComfyClient(fake_comfy.url, timeout=5) as client,
        ComfyBackend(client, backoff=Backoff(0.02, 0.2), check_interval=0.02) as backend,
        JobQueue([backend], library, max_per_user=1) as queue,
    ):
        async with asyncio.timeout(5):
            await backend.stream.wait_connected()
            await backend.check()
        yield queue


@pytest.mark.parametrize(
    ("path", "answer"),
    [
        ("/prompt", {"status": 400, "json_body": {"error": "no prompt", "node_errors": []}}),
        ("/prompt", {"json_body": {}}),
        ("/prompt", {"text": HTML, "status": 200}),
        ("/upload/image", {"json_body": {"filename": "x.png"}}),
    ],
    ids=["prompt-400-string", "prompt-200-empty", "prompt-html", "upload-no-name"],
)
async def test_a_strange_answer_ends_the_job_and_frees_the_members_slot(
    queue: JobQueue, fake_comfy: FakeComfy, path: str, answer: dict[str, Any]
):
    fake_comfy.script.answer("POST", path, **answer)
    image = (ImageFile("cat.png", png()),)
    request = GenerationRequest("alice", "demo", images=image)

    job = queue.submit(request)
    async with asyncio.timeout(5):
        result = await job.result()

    assert result.state is JobState.FAILED
    assert isinstance(result.error, ComfyError)
    assert queue.active_count("alice") == 0
    retry = queue.submit(request)  # the slot (MAX_JOBS_PER_USER=1) is free again
    async with asyncio.timeout(5):
        assert (await retry.result()).state is JobState.DONE


async def test_the_health_loop_outlives_strange_stats_and_the_server_is_used_once_sane(
    fake_comfy: FakeComfy,
):
    fake_comfy.script.answer("GET", "/system_stats", json_body={"system": "x"}, times=None)
    library = WorkflowLibrary.load(REPO / "workflows")
    async with (
        ComfyClient(fake_comfy.url, timeout=5) as client,
        ComfyBackend(client, backoff=Backoff(0.02, 0.2), check_interval=0.02) as backend,
        JobQueue([backend], library) as queue,
    ):
        async with asyncio.timeout(5):
            await backend.stream.wait_connected()
        job = queue.submit(GenerationRequest("bob", SLOW))
        health = await backend.check()
        assert not health.is_up
        assert "'system' is not an object" in (health.error or "")
        assert not backend.is_healthy
        assert job.state is JobState.WAITING  # nothing is sent to a server we do not understand

        fake_comfy.script.clear()  # the loop, still running, finds the server sane again
        async with asyncio.timeout(5):
            result = await job.result()
        assert result.state is JobState.DONE
        assert backend.health.version == fake_comfy.rules.comfyui_version


async def test_the_health_loop_survives_an_unexpected_exception(
    fake_comfy: FakeComfy, monkeypatch: pytest.MonkeyPatch
):
    async with ComfyClient(fake_comfy.url, timeout=5) as client:
        backend = ComfyBackend(client, backoff=Backoff(0.02, 0.2), check_interval=0.01)
        rounds: list[int] = []
        again = asyncio.Event()

        async def broken_round() -> None:
            rounds.append(len(rounds))
            if len(rounds) == 1:
                raise KeyError("a bug of ours")
            again.set()

        monkeypatch.setattr(backend.monitor, "_round", broken_round)
        async with backend:
            async with asyncio.timeout(5):
                await again.wait()
        assert rounds[:2] == [0, 1]


async def test_a_cancel_waiting_for_a_failed_upload_returns(queue: JobQueue, fake_comfy: FakeComfy):
    fake_comfy.slow = 0.2  # the upload is on its way when the member cancels
    fake_comfy.script.answer("POST", "/upload/image", json_body={"filename": "x.png"})
    job = queue.submit(GenerationRequest("alice", "demo", images=(ImageFile("c.png", png()),)))
    await fake_comfy.wait_for_request("POST", "/upload/image")

    async with asyncio.timeout(5):
        cancelled = await queue.cancel(job.id, by="alice")
        result = await job.result()

    assert cancelled is CancelResult.NOT_FOUND  # it failed on its own: nothing left to stop
    assert (result.state, result.cancelled_by) == (JobState.FAILED, "alice")
    assert isinstance(result.error, ProtocolError)
    assert queue.active_count("alice") == 0
