"""The fake ComfyUI's runs and WebSocket traffic, checked against the recorded traces."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from PIL import Image

from tests.fakes.comfy import FakeComfy
from tests.fakes.comfy_probe import Probe, load_trace, shape, trace_frames, trace_posts


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def submit(
    http: aiohttp.ClientSession, fake: FakeComfy, prompt: dict[str, Any], client_id: str | None
) -> str:
    body: dict[str, Any] = {"prompt": prompt}
    if client_id is not None:
        body["client_id"] = client_id
    return await submit_body(http, fake, body)


async def submit_body(http: aiohttp.ClientSession, fake: FakeComfy, body: dict[str, Any]) -> str:
    async with http.post(f"{fake.url}/prompt", json=body) as response:
        assert response.status == 200, await response.text()
        prompt_id: str = (await response.json())["prompt_id"]
        return prompt_id


async def post(http: aiohttp.ClientSession, url: str, body: Any = None) -> None:
    async with http.post(url, json=body) if body is not None else http.post(url) as response:
        assert response.status == 200
        assert response.headers["Content-Length"] == "0"


def slow_prompt(steps: int, seed: int, preview: str = "none") -> dict[str, Any]:
    return {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 16, "height": 16, "batch_size": 1, "color": seed},
        },
        "2": {
            "class_type": "SlowProgress",
            "inputs": {
                "image": ["1", 0],
                "steps": steps,
                "delay": 0.1,
                "preview": preview,
                "seed": seed,
            },
        },
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "t"}},
    }


def recorded_prompts(name: str) -> list[dict[str, Any]]:
    return [step["request"]["request_json"] for step in trace_posts(load_trace(name))]


def kinds(frames: list[dict[str, Any]]) -> list[str]:
    return [frame["type"] for frame in frames]


async def test_successful_run_matches_trace_a(fake_comfy: FakeComfy, http: aiohttp.ClientSession):
    trace = load_trace("a_success.json")
    body = recorded_prompts("a_success.json")[0]
    probe = await Probe.connect(http, fake_comfy.url, body["client_id"])
    frames = [await probe.next()]
    prompt_id = await submit_body(http, fake_comfy, body)
    frames += await probe.until_done(prompt_id)

    assert [shape(f) for f in frames] == [shape(f) for f in trace_frames(trace, "A")]
    recorded = next(
        s for s in trace["steps"] if s.get("request", {}).get("path", "").startswith("/hist")
    )
    expected = next(iter(recorded["response"]["body_json"].values()))
    entry = fake_comfy.history[prompt_id]
    assert list(entry) == list(expected)
    assert entry["prompt"][2:] == expected["prompt"][2:]
    assert entry["meta"] == expected["meta"]
    assert list(entry["outputs"]) == list(expected["outputs"])
    assert [m[0] for m in entry["status"]["messages"]] == [
        m[0] for m in expected["status"]["messages"]
    ]
    image = entry["outputs"]["4"]["images"][0]
    async with http.get(f"{fake_comfy.url}/view", params=image) as response:
        assert response.status == 200
        assert response.content_type == "image/png"
        assert Image.open(io.BytesIO(await response.read())).size == (64, 64)


async def test_resubmits_are_cached_as_in_trace_b(
    fake_comfy: FakeComfy, http: aiohttp.ClientSession
):
    bodies = recorded_prompts("b_cached_resubmit.json")
    probe = await Probe.connect(http, fake_comfy.url, bodies[0]["client_id"])
    await probe.next()
    await probe.until_done(await submit_body(http, fake_comfy, bodies[0]))
    frames = []
    for body in bodies:
        frames += await probe.until_done(await submit_body(http, fake_comfy, body))

    recorded = trace_frames(load_trace("b_cached_resubmit.json"), "A")[1:]
    assert [shape(f) for f in frames] == [shape(f) for f in recorded]


async def test_observer_gets_only_status_and_clientless_prompts_broadcast_progress(
    fake_comfy: FakeComfy, http: aiohttp.ClientSession
):
    a = await Probe.connect(http, fake_comfy.url, "client-a")
    b = await Probe.connect(http, fake_comfy.url, "client-b")
    assert (await b.next())["data"]["sid"] == "client-b"
    await a.next()
    prompt_id = await submit(http, fake_comfy, slow_prompt(3, 1, "JPEG"), "client-a")
    assert "execution_success" in kinds(await a.until_done(prompt_id))
    idle = {"exec_info": {"queue_remaining": 0}}
    assert kinds(await b.until("status", status=idle)) == ["status"] * 3
    await post(http, f"{fake_comfy.url}/queue", {"clear": True})
    assert (await b.next())["data"] == {"status": idle}
    assert (await a.next())["data"] == {"status": idle}

    trace = load_trace("i_reconnect_and_broadcast.json")
    clientless = trace_posts(trace)[1]["request"]["request_json"]
    assert "client_id" not in clientless
    await submit_body(http, fake_comfy, clientless)
    frames = await b.until("status", status=idle)
    recorded = trace_frames(trace, "B")[4:]
    assert [shape(f) for f in frames] == [shape(f) for f in recorded]
    assert set(kinds(await a.until("status", status=idle))) == {
        "status",
        "progress_state",
        "progress",
        "binary1",
    }


async def test_interrupt_hits_only_the_running_prompt(
    fake_comfy: FakeComfy, http: aiohttp.ClientSession
):
    url = fake_comfy.url
    probe = await Probe.connect(http, url, "A")
    await probe.next()
    fake_comfy.hold()
    first = await submit(http, fake_comfy, slow_prompt(3, 1), "A")
    second = await submit(http, fake_comfy, slow_prompt(2, 2), "A")
    await fake_comfy.wait_for_prompt(first, "running")
    await post(http, f"{url}/interrupt", {"prompt_id": second})
    await post(http, f"{url}/interrupt", {"prompt_id": "00000000-0000-0000-0000-000000000000"})
    fake_comfy.release()
    assert "execution_success" in kinds(await probe.until_done(first))
    assert "execution_success" in kinds(await probe.until_done(second))

    third = await submit(http, fake_comfy, slow_prompt(500, 3), "A")
    await probe.until("progress", prompt_id=third)
    fake_comfy.hold()
    await post(http, f"{url}/interrupt", {"prompt_id": third})
    fake_comfy.release()
    frames = await probe.until_done(third)
    assert kinds(frames)[-3:] == ["execution_interrupted", "status", "executing"]
    data = frames[-3]["data"]
    assert (data["node_id"], data["node_type"], data["executed"]) == ("2", "SlowProgress", ["1"])
    status = fake_comfy.history[third]["status"]
    assert (status["status_str"], status["completed"]) == ("error", False)
    assert fake_comfy.history[third]["outputs"] == {}

    await post(http, f"{url}/interrupt")  # while idle: no effect on the next prompt
    fourth = await submit(http, fake_comfy, slow_prompt(2, 4), "A")
    assert "execution_success" in kinds(await probe.until_done(fourth))
    assert fake_comfy.interrupts[-2:] == [{"prompt_id": third}, None]


async def test_queue_listing_delete_front_and_clear(
    fake_comfy: FakeComfy, http: aiohttp.ClientSession
):
    url = fake_comfy.url
    probe = await Probe.connect(http, url, "A")
    observer = await Probe.connect(http, url, "B")
    await probe.next()
    await observer.next()
    fake_comfy.hold()
    ids = [await submit(http, fake_comfy, slow_prompt(1, seed), "A") for seed in range(3)]
    await fake_comfy.wait_for_prompt(ids[0], "running")
    async with http.get(f"{url}/queue") as response:
        queue = await response.json()
    assert queue["queue_running"] == [[0, ids[0], slow_prompt(1, 0), {"client_id": "A"}, ["3"]]]
    assert [item[:2] for item in queue["queue_pending"]] == [[1, ids[1]], [2, ids[2]]]
    await observer.until("status", status={"exec_info": {"queue_remaining": 3}})

    await post(http, f"{url}/queue", {"delete": [ids[2]]})
    assert (await observer.next())["data"]["status"]["exec_info"]["queue_remaining"] == 2
    await post(http, f"{url}/queue", {"delete": [ids[0]]})  # running: ignored, no status
    front = await submit_body(http, fake_comfy, {"prompt": slow_prompt(1, 9), "front": True})
    assert (await observer.next())["data"]["status"]["exec_info"]["queue_remaining"] == 3
    assert fake_comfy.running == ids[0]
    assert fake_comfy.pending == [front, ids[1]]
    fake_comfy.release()
    await fake_comfy.wait_idle()
    assert list(fake_comfy.history) == [ids[0], front, ids[1]]
    assert fake_comfy.history[front]["prompt"][0] == -3
    async with http.get(f"{url}/history/{ids[2]}") as response:
        assert await response.json() == {}

    fake_comfy.hold()
    more = [await submit(http, fake_comfy, slow_prompt(1, 10 + n), "A") for n in range(3)]
    await fake_comfy.wait_for_prompt(more[0], "running")
    await post(http, f"{url}/queue", {"clear": True})
    assert fake_comfy.pending == []
    fake_comfy.release()
    await fake_comfy.wait_for_prompt(more[0], "done")


async def test_restart_forgets_queue_and_history(
    fake_comfy: FakeComfy, http: aiohttp.ClientSession
):
    url = fake_comfy.url
    probe = await Probe.connect(http, url, "A")
    await probe.next()
    fake_comfy.uploads["kept.png"] = b"x"
    fake_comfy.hold()
    first = await submit(http, fake_comfy, slow_prompt(2, 1), "A")
    await submit(http, fake_comfy, slow_prompt(2, 2), "A")
    await fake_comfy.wait_for_prompt(first, "running")

    await fake_comfy.restart()
    fake_comfy.release()
    await probe.until_closed()
    assert fake_comfy.url == url
    assert (fake_comfy.running, fake_comfy.pending, fake_comfy.history) == (None, [], {})
    async with aiohttp.ClientSession() as fresh, fresh.get(f"{url}/queue") as response:
        assert await response.json() == {"queue_running": [], "queue_pending": []}
        async with fresh.post(f"{url}/prompt", json={"prompt": slow_prompt(1, 3)}) as answer:
            assert (await answer.json())["number"] == 0
    assert fake_comfy.uploads == {"kept.png": b"x"}


async def test_dropped_socket_reconnects_into_the_running_node(
    fake_comfy: FakeComfy, http: aiohttp.ClientSession
):
    probe = await Probe.connect(http, fake_comfy.url, "A")
    await probe.next()
    prompt_id = await submit(http, fake_comfy, slow_prompt(500, 1, "JPEG"), "A")
    await probe.until("progress", prompt_id=prompt_id)
    fake_comfy.hold()
    await fake_comfy.drop_sockets()
    await probe.until_closed()
    assert fake_comfy.running == prompt_id

    again = await Probe.connect(http, fake_comfy.url, "A")
    first = await again.next()
    assert first["data"] == {"status": {"exec_info": {"queue_remaining": 1}}, "sid": "A"}
    assert await again.next() == {"type": "executing", "data": {"node": "2"}}
    fake_comfy.step_delay = 0
    fake_comfy.release()
    assert "execution_success" in kinds(await again.until_done(prompt_id))


async def test_feature_flags_switch_previews_to_event_4(
    fake_comfy: FakeComfy, http: aiohttp.ClientSession
):
    trace = load_trace("k_feature_flags_previews_text.json")
    bodies = recorded_prompts("k_feature_flags_previews_text.json")
    flagged = await Probe.connect(http, fake_comfy.url, bodies[0]["client_id"])
    await flagged.send({"type": "feature_flags", "data": {"supports_preview_metadata": True}})
    frames = [await flagged.next(), await flagged.next()]
    frames += await flagged.until_done(await submit_body(http, fake_comfy, bodies[0]))
    recorded = trace_frames(trace, "F")
    assert [shape(f) for f in frames] == [shape(f) for f in recorded[: len(frames)]]
    assert frames[1]["data"] == {"supports_preview_metadata": True, "max_upload_size": 104857600}
    preview = next(f for f in frames if f["type"] == "binary4")
    assert preview["metadata"]["image_type"] == "image/png"
    assert Image.open(io.BytesIO(preview["payload"])).size == (64, 38)

    late = await Probe.connect(http, fake_comfy.url, bodies[1]["client_id"])
    await late.send({"type": "hello", "data": {}})
    await late.send({"type": "feature_flags", "data": {"supports_preview_metadata": True}})
    frames = [await late.next()]
    frames += await late.until_done(await submit_body(http, fake_comfy, bodies[1]))
    assert [shape(f) for f in frames] == [shape(f) for f in trace_frames(trace, "L")]
    idle = {"exec_info": {"queue_remaining": 0}}
    assert kinds(await flagged.until("status", status=idle)) == [
        "status",
        "status",
        "binary3",
        "status",
    ]


async def test_newest_socket_of_a_client_id_takes_over(
    fake_comfy: FakeComfy, http: aiohttp.ClientSession
):
    trace = load_trace("l_duplicate_client_id.json")
    bodies = recorded_prompts("l_duplicate_client_id.json")
    client_id = bodies[0]["client_id"]
    old = await Probe.connect(http, fake_comfy.url, client_id)
    await old.next()
    new = await Probe.connect(http, fake_comfy.url, client_id)
    observer = await Probe.connect(http, fake_comfy.url, "observer")
    frames = [await new.next()]
    await observer.next()
    frames += await new.until_done(await submit_body(http, fake_comfy, bodies[0]))
    assert [shape(f) for f in frames] == [shape(f) for f in trace_frames(trace, "D2")]
    await new.ws.close()
    await submit_body(http, fake_comfy, bodies[1])
    await fake_comfy.wait_idle()
    idle = {"exec_info": {"queue_remaining": 0}}
    await observer.until("status", status=idle)
    assert kinds(await observer.until("status", status=idle)) == [
        "status",
        "status",
        "binary3",
        "status",
    ]
    with pytest.raises(TimeoutError):
        await old.next(timeout=0.2)  # absence cannot be awaited: a short bounded wait


async def test_failing_node_reports_as_trace_e(fake_comfy: FakeComfy, http: aiohttp.ClientSession):
    trace = load_trace("e_execution_error.json")
    bodies = recorded_prompts("e_execution_error.json")
    probe = await Probe.connect(http, fake_comfy.url, bodies[0]["client_id"])
    frames = [await probe.next()]
    first = await submit_body(http, fake_comfy, bodies[0])
    frames += await probe.until_done(first)
    frames += await probe.until_done(await submit_body(http, fake_comfy, bodies[1]))
    assert [shape(f) for f in frames] == [shape(f) for f in trace_frames(trace, "A")]

    error = next(f["data"] for f in frames if f["type"] == "execution_error")
    assert error["exception_type"] == "RuntimeError"
    assert error["exception_message"] == "boom: deliberate test failure\n"
    assert sorted(error["executed"]) == ["1", "2", "5"]
    assert sorted(error["current_outputs"]) == ["1", "2", "3", "4", "5"]
    assert set(error["current_inputs"]) == {"image", "message"}
    assert all(line.startswith('  File "') for line in error["traceback"])
    entry = fake_comfy.history[first]
    assert (entry["status"]["status_str"], entry["status"]["completed"]) == ("error", False)
    assert list(entry["outputs"]) == ["5"]


async def test_fail_nodes_switch(http: aiohttp.ClientSession):
    async with FakeComfy(fail_nodes={"ImageInvert"}) as fake:
        prompt = recorded_prompts("a_success.json")[0]["prompt"]
        probe = await Probe.connect(http, fake.url, "A")
        await probe.next()
        frames = await probe.until_done(await submit(http, fake, prompt, "A"))
        assert kinds(frames)[-3:] == ["execution_error", "status", "executing"]
        assert frames[-3]["data"]["node_type"] == "ImageInvert"
        assert next(iter(fake.history.values()))["outputs"] == {}


async def test_ksampler_run_matches_trace_n(http: aiohttp.ClientSession):
    trace = load_trace("n_txt2img_ksampler.json")
    bodies = recorded_prompts("n_txt2img_ksampler.json")
    async with FakeComfy(models={"checkpoints": ["random_sd15.safetensors"]}) as fake:
        legacy = await Probe.connect(http, fake.url, bodies[0]["client_id"])
        frames = [await legacy.next()]
        frames += await legacy.until_done(await submit_body(http, fake, bodies[0]))
        recorded = trace_frames(trace, "A")
        assert [shape(f) for f in frames] == [shape(f) for f in recorded[: len(frames)]]
        preview = next(f for f in frames if f["type"] == "binary1")
        assert preview["format"] == 1
        assert Image.open(io.BytesIO(preview["bytes"][8:])).size == (512, 512)

        flagged = await Probe.connect(http, fake.url, bodies[1]["client_id"])
        await flagged.send({"type": "feature_flags", "data": {"supports_preview_metadata": True}})
        frames = [await flagged.next(), await flagged.next()]
        frames += await flagged.until_done(await submit_body(http, fake, bodies[1]))
        assert [shape(f) for f in frames] == [shape(f) for f in trace_frames(trace, "F")]


async def test_close_is_clean_with_a_job_running_and_a_socket_open(http: aiohttp.ClientSession):
    fake = FakeComfy()
    await fake.start()
    probe = await Probe.connect(http, fake.url, "A")
    await probe.next()
    fake.hold()
    prompt_id = await submit(http, fake, slow_prompt(5, 1), "A")
    await fake.wait_for_prompt(prompt_id, "running")
    async with asyncio.timeout(5):
        await fake.close()
    await probe.until_closed()
    assert not fake.errors


async def test_save_image_websocket_frames_match_trace_j(
    fake_comfy: FakeComfy, http: aiohttp.ClientSession
):
    trace = load_trace("j_save_image_websocket.json")
    bodies = recorded_prompts("j_save_image_websocket.json")
    legacy = await Probe.connect(http, fake_comfy.url, bodies[0]["client_id"])
    frames = [await legacy.next()]
    frames += await legacy.until_done(await submit_body(http, fake_comfy, bodies[0]))
    assert [shape(f) for f in frames] == [shape(f) for f in trace_frames(trace, "A")]
    image = next(f for f in frames if f["type"] == "binary1")
    assert image["format"] == 2
    assert Image.open(io.BytesIO(image["bytes"][8:])).size == (48, 32)

    flagged = await Probe.connect(http, fake_comfy.url, bodies[1]["client_id"])
    await flagged.send({"type": "feature_flags", "data": {"supports_preview_metadata": True}})
    frames = [await flagged.next(), await flagged.next()]
    frames += await flagged.until_done(await submit_body(http, fake_comfy, bodies[1]))
    assert [shape(f) for f in frames] == [shape(f) for f in trace_frames(trace, "B")]
    assert next(iter(fake_comfy.history.values()))["outputs"] == {}


async def test_free_memory_drops_the_node_cache(fake_comfy: FakeComfy, http: aiohttp.ClientSession):
    probe = await Probe.connect(http, fake_comfy.url, "A")
    await probe.next()
    prompt = slow_prompt(2, 1)
    await probe.until_done(await submit(http, fake_comfy, prompt, "A"))
    frames = await probe.until_done(await submit(http, fake_comfy, prompt, "A"))
    cached = next(f for f in frames if f["type"] == "execution_cached")
    assert cached["data"]["nodes"] == ["1", "2", "3"]
    await post(http, f"{fake_comfy.url}/free", {"unload_models": True, "free_memory": True})
    frames = await probe.until_done(await submit(http, fake_comfy, prompt, "A"))
    cached = next(f for f in frames if f["type"] == "execution_cached")
    assert cached["data"]["nodes"] == []
