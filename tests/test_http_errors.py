"""The HTTP middleware's refusals: status, error code, and nothing sent to ComfyUI."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from bot.http.serve import HttpOptions
from tests.fakes.comfy import FakeComfy
from tests.http_harness import assert_nothing_sent, image_form, json_error, png, serve_middleware


@pytest.mark.parametrize(
    ("body", "status", "code", "words"),
    [
        ({"node_id": "99", "text": "x"}, 404, "unknown_node", "no node '99'"),
        ({"node_id": "3", "text": "x"}, 422, "invalid_input", "has no input 'text'"),
        ({"node_id": "2"}, 400, "bad_request", "also give"),
        ({"input": "steps", "value": 3}, 400, "bad_request", "need a"),
        ({"seed": "five"}, 422, "invalid_input", "seed"),
        ({"steps": 9999}, 422, "invalid_input", "between 1 and 500"),
        ({"cfg": 7}, 422, "invalid_input", "no place for cfg"),
        ({"colour": "red"}, 422, "invalid_input", "'colour' is not a workflow input"),
        ({"image": "x.png"}, 422, "invalid_input", "/upload/image"),
        ({"text": 5}, 422, "invalid_input", "must be text"),
        ([], 400, "bad_request", "JSON object"),
        ({}, 400, "bad_request", "JSON object"),
    ],
)
async def test_bad_updates_are_refused(
    fake_comfy: FakeComfy, body: Any, status: int, code: str, words: str
) -> None:
    async with serve_middleware(fake_comfy.url) as h:
        message = await json_error(await h.http.post("/update/prompt", json=body), status, code)
        state = await (await h.http.get("/workflow")).json()
    assert words in message
    assert state["values"] == {}
    assert state["overrides"] == []
    assert_nothing_sent(fake_comfy)


async def test_malformed_json_is_400(fake_comfy: FakeComfy) -> None:
    async with serve_middleware(fake_comfy.url) as h:
        answer = await h.http.post(
            "/update/prompt", data=b'{"text": ', headers={"Content-Type": "application/json"}
        )
        message = await json_error(answer, 400, "malformed_json")
    assert "not valid JSON" in message
    assert_nothing_sent(fake_comfy)


async def test_prompt_text_for_a_workflow_without_one_is_422(fake_comfy: FakeComfy) -> None:
    async with serve_middleware(fake_comfy.url, "demo") as h:
        answer = await h.http.post("/update/prompt", json={"text": "a cat"})
        message = await json_error(answer, 422, "no_prompt_input")
    assert "no prompt text input" in message


async def test_upload_refusals(fake_comfy: FakeComfy) -> None:
    options = HttpOptions(max_image_bytes=len(png()) + 10)
    async with serve_middleware(fake_comfy.url, options=options) as h:
        not_image = await h.http.post("/upload/image", data=image_form(b"GIF? no", "x.png"))
        await json_error(not_image, 422, "invalid_image")
        big = png(300, 300, (1, 2, 3)) + b"\0" * 2000
        await json_error(
            await h.http.post("/upload/image", data=image_form(big)), 413, "image_too_large"
        )
        no_field = await h.http.post("/upload/image", data={"picture": "x"})
        await json_error(no_field, 400, "bad_request")
        wrong_input = await h.http.post("/upload/image?input=1", data=image_form(png()))
        assert "between 0 and 0" in await json_error(wrong_input, 422, "no_image_input")
        bad_index = await h.http.post("/upload/image", data=image_form(png(), input="first"))
        await json_error(bad_index, 400, "bad_request")
        state = await (await h.http.get("/workflow")).json()
    assert state["images"][0]["filename"] is None
    assert_nothing_sent(fake_comfy)


async def test_upload_to_a_workflow_without_image_input_is_422(fake_comfy: FakeComfy) -> None:
    async with serve_middleware(fake_comfy.url, "slow") as h:
        answer = await h.http.post("/upload/image", data=image_form(png()))
        message = await json_error(answer, 422, "no_image_input")
    assert "no image input" in message
    assert_nothing_sent(fake_comfy)


async def test_unknown_jobs_outputs_and_routes(fake_comfy: FakeComfy) -> None:
    async with serve_middleware(fake_comfy.url) as h:
        await json_error(await h.http.get("/jobs/nope"), 404, "unknown_job")
        await json_error(await h.http.get("/jobs/nope/outputs/0"), 404, "unknown_job")
        await json_error(await h.http.post("/interrupt/nope"), 404, "unknown_job")
        await json_error(await h.http.get("/nowhere"), 404, "not_found")
        await json_error(await h.http.get("/jobs/x/outputs/first"), 404, "not_found")
        wrong = await h.http.delete("/queue")
        assert "GET, POST" in await json_error(wrong, 405, "method_not_allowed")
        nothing = await h.http.post("/interrupt")
        assert await nothing.json() == {"jobs": []}
    assert_nothing_sent(fake_comfy)


async def test_outputs_of_an_unfinished_job_are_409(fake_comfy: FakeComfy) -> None:
    async with serve_middleware(fake_comfy.url, "slow") as h, asyncio.timeout(10):
        fake_comfy.hold()
        job = (await (await h.http.post("/queue")).json())["job_id"]
        await json_error(await h.http.get(f"/jobs/{job}/outputs/0"), 409, "not_ready")
        fake_comfy.release()
        await h.jobs.get(job).result()


async def test_too_many_jobs_is_429(fake_comfy: FakeComfy) -> None:
    async with serve_middleware(fake_comfy.url, "slow", max_per_user=1) as h:
        fake_comfy.hold()
        assert (await h.http.post("/queue")).status == 202
        await json_error(await h.http.post("/queue"), 429, "too_many_jobs")
        await h.http.post("/interrupt")
        fake_comfy.release()


async def test_full_queue_is_429(fake_comfy: FakeComfy) -> None:
    async with serve_middleware(fake_comfy.url, "slow", max_waiting=0) as h:
        await json_error(await h.http.post("/queue"), 429, "queue_full")
    assert_nothing_sent(fake_comfy)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_comfyui_unreachable_is_503() -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    async with serve_middleware(url, "slow", wait_connected=False) as h:
        await json_error(await h.http.post("/queue"), 503, "comfyui_unavailable")
        health = await h.http.get("/health")
        body = await health.json()
    assert health.status == 503
    assert body["status"] == "unavailable"
    assert body["comfyui"]["connected"] is False


async def test_body_over_the_cap_is_413(fake_comfy: FakeComfy) -> None:
    options = HttpOptions(max_body_bytes=1024)
    async with serve_middleware(fake_comfy.url, options=options) as h:
        big = {"text": "x" * 4096}
        message = await json_error(
            await h.http.post("/update/prompt", json=big), 413, "body_too_large"
        )
        upload = await h.http.post("/upload/image", data=image_form(png() + b"\0" * 4096))
        await json_error(upload, 413, "body_too_large")
        small = await h.http.post("/update/prompt", json={"text": "fits"})
        assert small.status == 200
    assert "HTTP_MAX_BODY_BYTES" in message
    assert_nothing_sent(fake_comfy)
