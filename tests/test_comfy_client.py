"""ComfyClient against FakeComfy over real sockets: ids, rejections, files, queue, errors."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import pkgutil
import uuid
from collections.abc import AsyncIterator
from typing import Any, Literal

import aiohttp
import pytest

import bot.comfy
from bot.comfy.client import ComfyClient
from bot.comfy.errors import (
    ComfyError,
    ComfyHTTPError,
    ComfyUnavailable,
    NodeError,
    PromptRejected,
    ProtocolError,
)
from bot.comfy.events import OutputFile
from bot.comfy.ids import is_canonical
from tests.backend_env import closed_url
from tests.comfy_prompts import PNG_MAGIC, slow_prompt
from tests.fakes.comfy import FakeComfy

CLIENT_ID = "core-tests"


@pytest.fixture
def comfy_version(both_versions: str) -> str:
    return both_versions


@pytest.fixture
async def comfy(fake_comfy: FakeComfy) -> AsyncIterator[ComfyClient]:
    async with ComfyClient(fake_comfy.url, client_id=CLIENT_ID, timeout=5) as client:
        yield client


async def test_submit_uses_our_client_id_and_prompt_id(comfy: ComfyClient, fake_comfy: FakeComfy):
    fake_comfy.hold()
    chosen = str(uuid.uuid4())
    submitted = await comfy.submit(slow_prompt(1), prompt_id=chosen)
    await fake_comfy.wait_for_prompt(chosen, "running")
    generated = await comfy.submit(slow_prompt(2))

    assert submitted.prompt_id == chosen
    assert is_canonical(generated.prompt_id)
    assert fake_comfy.running == chosen
    assert fake_comfy.pending == [generated.prompt_id]
    fake_comfy.release()
    await fake_comfy.wait_idle()
    for prompt_id in (chosen, generated.prompt_id):
        _, stored_id, _, extra, _ = fake_comfy.history[prompt_id]["prompt"]
        assert (stored_id, extra["client_id"]) == (prompt_id, CLIENT_ID)


def _two_bad_nodes() -> dict[str, Any]:
    prompt = slow_prompt(3)
    prompt["1"]["inputs"]["width"] = "wide"
    prompt["2"]["inputs"]["steps"] = "many"
    return prompt


def _unknown_class() -> dict[str, Any]:
    prompt = slow_prompt(4)
    prompt["2"]["class_type"] = "NoSuchNode"
    return prompt


def _missing_input() -> dict[str, Any]:
    prompt = slow_prompt(5)
    del prompt["2"]["inputs"]["steps"]
    return prompt


def _error_fields(errors: tuple[NodeError, ...]) -> set[tuple[Any, ...]]:
    return {(e.node_id, e.class_type, e.input_name, e.error_type) for e in errors}


@pytest.mark.parametrize(
    ("prompt", "error_type", "expected"),
    [
        pytest.param(
            _two_bad_nodes(),
            "prompt_outputs_failed_validation",
            {
                ("1", "EmptyImage", "width", "invalid_input_type"),
                ("2", "SlowProgress", "steps", "invalid_input_type"),
            },
            id="two-bad-nodes",
        ),
        pytest.param(
            _unknown_class(),
            "invalid_prompt",
            {("2", None, None, "invalid_prompt")},
            id="unknown-class",
        ),
        pytest.param(
            _missing_input(),
            "prompt_outputs_failed_validation",
            {("2", "SlowProgress", "steps", "required_input_missing")},
            id="missing-input",
        ),
    ],
)
async def test_rejected_prompt_carries_every_node_error(
    comfy: ComfyClient,
    fake_comfy: FakeComfy,
    prompt: dict[str, Any],
    error_type: str,
    expected: set[tuple[Any, ...]],
):
    refused = str(uuid.uuid4())
    with pytest.raises(PromptRejected) as caught:
        await comfy.submit(prompt, prompt_id=refused)

    rejected = caught.value
    assert rejected.error_type == error_type
    assert _error_fields(rejected.node_errors) == expected
    assert all(e.message for e in rejected.node_errors)
    assert fake_comfy.pending == []
    assert fake_comfy.running is None
    assert refused not in fake_comfy.history


async def test_unknown_class_error_names_the_class(comfy: ComfyClient):
    with pytest.raises(PromptRejected) as caught:
        await comfy.submit(_unknown_class())
    assert "NoSuchNode" in caught.value.node_errors[0].message


async def test_uploads_of_one_filename_never_collide(comfy: ComfyClient, fake_comfy: FakeComfy):
    first = await comfy.upload_image(b"first image", "cat.png")
    second = await comfy.upload_image(b"second image", "cat.png")
    odd = await comfy.upload_image(b"third", "../../etc/we ird name.PNG")

    assert first.name != second.name
    assert first.name.endswith("_cat.png")
    assert fake_comfy.uploads[first.reference] == b"first image"
    assert fake_comfy.uploads[second.reference] == b"second image"
    assert "/" not in odd.name
    assert ".." not in odd.name
    assert odd.name.endswith(".png")
    assert fake_comfy.uploads[odd.reference] == b"third"


async def test_view_downloads_the_bytes_of_an_output(comfy: ComfyClient, fake_comfy: FakeComfy):
    submitted = await comfy.submit(slow_prompt(6, prefix="viewed"))
    await fake_comfy.wait_for_prompt(submitted.prompt_id, "done")

    entry = await comfy.history(submitted.prompt_id)
    assert entry is not None
    assert (entry.status, entry.completed) == ("success", True)
    [file] = entry.files
    data = await comfy.view(file)
    assert data.startswith(PNG_MAGIC)
    assert data == fake_comfy.outputs[file.filename]


@pytest.mark.parametrize("path", ["/prompt", "/upload/image"])
async def test_an_empty_json_object_for_a_prompt_or_upload_is_a_protocol_error(
    comfy: ComfyClient, fake_comfy: FakeComfy, path: str
):
    # Found by the soak: {} raised KeyError, which no caller expects, and the job hung.
    fake_comfy.answer_strangely("json", paths=[path])
    call = comfy.submit(slow_prompt(2)) if path == "/prompt" else comfy.upload_image(b"x", "a.png")
    with pytest.raises(ProtocolError, match=f"the answer of (POST )?{path} has no"):
        await call


@pytest.mark.parametrize("kind", ["html", "json"])
async def test_view_answered_by_a_page_instead_of_the_file_is_a_protocol_error(
    comfy: ComfyClient, fake_comfy: FakeComfy, kind: Literal["html", "json"]
):
    # Found by the soak: a proxy's 502 page was posted to Discord as the result image.
    fake_comfy.outputs["made.png"] = PNG_MAGIC + b"rest"
    fake_comfy.answer_strangely(kind, paths=["/view"])
    with pytest.raises(ProtocolError, match=r"/view answered .* instead of made\.png"):
        await comfy.view(OutputFile("made.png", "", "output"))


async def test_view_of_a_missing_file_is_an_http_error(comfy: ComfyClient):
    with pytest.raises(ComfyHTTPError) as caught:
        await comfy.view(OutputFile("nothing.png", "", "output"))
    assert caught.value.status == 404


async def test_history_of_an_unknown_prompt_is_none(comfy: ComfyClient):
    assert await comfy.history("never-submitted") is None


async def test_queue_is_parsed_in_run_order(comfy: ComfyClient, fake_comfy: FakeComfy):
    fake_comfy.hold()
    first = (await comfy.submit(slow_prompt(10))).prompt_id
    await fake_comfy.wait_for_prompt(first, "running")
    second = (await comfy.submit(slow_prompt(11))).prompt_id
    third = (await comfy.submit(slow_prompt(12))).prompt_id
    jumped = (await comfy.submit(slow_prompt(13), front=True)).prompt_id

    queue = await comfy.queue()

    assert [item.prompt_id for item in queue.running] == [first]
    assert [item.prompt_id for item in queue.pending] == [jumped, second, third]
    assert [item.prompt_id for item in queue.pending] == fake_comfy.pending
    assert {item.client_id for item in (*queue.running, *queue.pending)} == {CLIENT_ID}
    assert [queue.position(p) for p in (first, jumped, second, third)] == [0, 1, 2, 3]
    assert queue.is_running(first)
    assert not queue.is_pending(first)
    assert queue.is_pending(third)
    assert queue.position("absent") is None
    fake_comfy.release()


async def test_delete_pending_removes_only_the_named_prompt(
    comfy: ComfyClient, fake_comfy: FakeComfy
):
    fake_comfy.hold()
    running = (await comfy.submit(slow_prompt(20))).prompt_id
    await fake_comfy.wait_for_prompt(running, "running")
    deleted = (await comfy.submit(slow_prompt(21))).prompt_id
    kept = (await comfy.submit(slow_prompt(22))).prompt_id

    await comfy.delete_pending([deleted, running])

    assert fake_comfy.pending == [kept]
    assert fake_comfy.running == running
    fake_comfy.release()
    await fake_comfy.wait_idle()
    assert deleted not in fake_comfy.history
    assert fake_comfy.history[running]["status"]["status_str"] == "success"
    assert fake_comfy.history[kept]["status"]["status_str"] == "success"


async def test_interrupt_targets_only_the_named_prompt(comfy: ComfyClient, fake_comfy: FakeComfy):
    fake_comfy.hold()
    running = (await comfy.submit(slow_prompt(30))).prompt_id
    await fake_comfy.wait_for_prompt(running, "running")
    waiting = (await comfy.submit(slow_prompt(31))).prompt_id

    await comfy.interrupt(waiting)  # not running: must not stop the running one
    fake_comfy.release()
    await fake_comfy.wait_for_prompt(running, "done")
    assert fake_comfy.history[running]["status"]["status_str"] == "success"

    fake_comfy.hold()
    await fake_comfy.wait_for_prompt(waiting, "running")
    await comfy.interrupt(waiting)
    fake_comfy.release()
    await fake_comfy.wait_idle()

    messages = [kind for kind, _ in fake_comfy.history[waiting]["status"]["messages"]]
    assert "execution_interrupted" in messages
    assert fake_comfy.interrupts == [{"prompt_id": waiting}, {"prompt_id": waiting}]


async def test_object_info_lists_node_classes(comfy: ComfyClient):
    info = await comfy.object_info()
    assert {"SaveImage", "LoadImage", "SlowProgress"} <= info.keys()
    assert "image" in info["LoadImage"]["input"]["required"]


async def test_system_stats_is_typed(comfy: ComfyClient, fake_comfy: FakeComfy):
    stats = await comfy.system_stats()
    assert stats.version == fake_comfy.rules.comfyui_version
    assert stats.pytorch_version == "2.14.1+cu130"
    [device] = stats.devices
    assert (device.label, device.vram_total) == ("cpu", 25276510208)
    assert stats.describe().startswith(f"ComfyUI {stats.version}, PyTorch 2.14.1+cu130, cpu: VRAM")


async def test_free_posts_its_flags(comfy: ComfyClient, fake_comfy: FakeComfy):
    await comfy.free(unload_models=True, free_memory=True)
    assert ("POST", "/free") in fake_comfy.requests
    assert fake_comfy.executor.free_requested


async def test_nothing_listening_is_unavailable():
    async with ComfyClient(closed_url(), timeout=2) as client:
        with pytest.raises(ComfyUnavailable, match="unreachable"):
            await client.queue()
        with pytest.raises(ComfyUnavailable):
            await client.submit(slow_prompt())


async def test_slow_server_is_unavailable_after_the_timeout(fake_comfy: FakeComfy):
    fake_comfy.slow = 1.0
    async with ComfyClient(fake_comfy.url, timeout=0.1) as client:
        async with asyncio.timeout(2):
            with pytest.raises(ComfyUnavailable, match="timed out"):
                await client.system_stats()
    fake_comfy.slow = 0


async def test_injected_session_stays_open(fake_comfy: FakeComfy):
    async with aiohttp.ClientSession() as session:
        async with ComfyClient(fake_comfy.url, session=session) as client:
            await client.system_stats()
        assert not session.closed
        async with session.get(f"{fake_comfy.url}/system_stats") as response:
            assert response.status == 200


async def test_own_session_is_closed(fake_comfy: FakeComfy):
    client = ComfyClient(fake_comfy.url)
    await client.system_stats()
    owned = client._transport._session
    assert owned is not None
    await client.close()
    assert owned.closed


def test_every_comfy_exception_derives_from_comfy_error():
    names = [info.name for info in pkgutil.iter_modules(bot.comfy.__path__, "bot.comfy.")]
    modules = [importlib.import_module(name) for name in names]
    assert len(modules) > 10
    exceptions = {
        cls
        for module in modules
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, BaseException) and cls.__module__.startswith("bot.comfy")
    }
    assert {ComfyUnavailable, ComfyHTTPError, PromptRejected} <= exceptions
    assert all(issubclass(cls, ComfyError) for cls in exceptions)


async def test_every_prompt_asks_for_the_configured_preview_method(fake_comfy: FakeComfy):
    async with ComfyClient(fake_comfy.url, preview_method="latent2rgb") as client:
        plain = await client.submit(slow_prompt(40))
        extra = await client.submit(slow_prompt(41), extra_data={"extra_pnginfo": {"a": 1}})
    await fake_comfy.wait_idle()
    for submitted in (plain, extra):
        assert (
            fake_comfy.history[submitted.prompt_id]["prompt"][3]["preview_method"] == "latent2rgb"
        )
    assert fake_comfy.history[extra.prompt_id]["prompt"][3]["extra_pnginfo"] == {"a": 1}
