"""The HTTP middleware over real sockets: it and the fake ComfyUI both on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from bot.comfy.client import ComfyClient
from bot.http.serve import HttpOptions
from bot.images import check_input_image
from bot.jobs.progress import JobState
from bot.workflows.library import load_workflow
from tests.fakes.comfy import FakeComfy
from tests.http_harness import FIXTURES, image_form, png, serve_middleware, sse, until_final

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def uploaded_size(data: bytes) -> int:
    """What an upload of `data` becomes: its first frame re-encoded as PNG."""
    return len(check_input_image(data, "x.png", max_bytes=len(data)).data)


async def _connected(events: Any) -> None:
    async for kind, text in sse(events):
        if kind == "comment" and text == "connected":
            return


async def test_upload_update_queue_events_job_outputs(fake_comfy: FakeComfy) -> None:
    async with serve_middleware(fake_comfy.url) as h, asyncio.timeout(15):
        events = await h.http.get("/events")
        assert events.headers["Content-Type"].startswith("text/event-stream")
        await _connected(events)

        upload = await h.http.post("/upload/image", data=image_form(png(), "cat.png"))
        assert upload.status == 200, await upload.text()
        assert await upload.json() == {
            "input": 0,
            "node_id": "1",
            "filename": "cat.png",
            "size": uploaded_size(png()),
            "content_type": "image/png",
        }
        update = await h.http.post("/update/prompt", json={"text": "a red fox", "seed": 42})
        assert update.status == 200, await update.text()
        assert (await update.json())["values"] == {"prompt": "a red fox", "seed": 42}

        queued = await h.http.post("/queue")
        assert queued.status == 202, await queued.text()
        job = await queued.json()
        assert job["job_id"] == job["prompt_id"]
        assert job["state"] == "waiting"
        assert "position" in job
        assert queued.headers["Location"] == f"/jobs/{job['job_id']}"

        seen = await until_final(events, job["job_id"])
        assert seen[-1]["state"] == "done"
        assert {"queued", "running"} <= {s["state"] for s in seen}
        assert any(s["progress"]["steps"] == 3 for s in seen)
        events.close()

        answer = await h.http.get(f"/jobs/{job['job_id']}")
        detail = await answer.json()
        assert detail["state"] == "done"
        assert detail["error"] is None
        assert detail["seed"] == 42
        assert detail["progress"]["percent"] == 100.0
        assert len(detail["outputs"]) == 1
        output = await h.http.get(detail["outputs"][0]["url"])
        assert output.status == 200
        assert output.content_type == "image/png"
        assert (await output.read()).startswith(PNG_MAGIC)

    graph = h.jobs.get(job["job_id"]).graph
    assert graph["2"]["inputs"]["text"] == "a red fox"
    assert graph["3"]["inputs"]["seed"] == 42
    uploaded = graph["1"]["inputs"]["image"]
    assert uploaded != "cat.png"
    assert uploaded.endswith("cat.png")
    assert fake_comfy.uploads[uploaded] == check_input_image(png(), "x", max_bytes=10**6).data


async def test_get_queue_is_the_originals_trigger_and_keeps_exported_text(
    fake_comfy: FakeComfy,
) -> None:
    async with serve_middleware(fake_comfy.url) as h, asyncio.timeout(10):
        await h.http.post("/upload/image", data=image_form(png()))
        answer = await h.http.get("/queue")
        assert answer.status == 202
        job = h.jobs.get((await answer.json())["job_id"])
        assert (await job.result()).state is JobState.DONE
        assert job.graph["2"]["inputs"]["text"] == "exported text"
        assert isinstance(job.seed, int)


async def test_workflow_shows_the_graph_that_would_be_queued(fake_comfy: FakeComfy) -> None:
    async with serve_middleware(fake_comfy.url) as h:
        await h.http.post("/upload/image?input=0", data=image_form(png(), "dog.png"))
        await h.http.post("/update/prompt", json={"node_id": "3", "input": "delay", "value": 0.5})
        await h.http.post("/update/prompt", json={"node_id": 2, "text": "by node"})
        state = await (await h.http.get("/workflow")).json()
    assert state["workflow"]["name"] == "http_text"
    assert state["graph"]["1"]["inputs"]["image"] == "dog.png"
    assert state["graph"]["2"]["inputs"]["text"] == "by node"
    assert state["graph"]["3"]["inputs"]["delay"] == 0.5
    assert state["images"] == [
        {
            "input": 0,
            "node_id": "1",
            "filename": "dog.png",
            "size": uploaded_size(png()),
            "content_type": "image/png",
        }
    ]
    assert {"node_id": "2", "input": "text", "value": "by node"} in state["overrides"]
    assert state["points"]["prompt"] == ["2.text"]


async def test_auto_execute_queues_on_upload(fake_comfy: FakeComfy) -> None:
    options = HttpOptions(auto_execute=True)
    async with serve_middleware(fake_comfy.url, "demo", options) as h, asyncio.timeout(10):
        answer = await h.http.post("/upload/image", data=image_form(png()))
        assert answer.status == 202, await answer.text()
        body = await answer.json()
        job = h.jobs.get(body["job"]["job_id"])
        result = await job.result()
    assert result.state is JobState.DONE
    assert result.outputs[0].data.startswith(PNG_MAGIC)


async def test_interrupt_stops_only_this_servers_jobs(fake_comfy: FakeComfy) -> None:
    other_graph = load_workflow(FIXTURES / "slow.json").with_inputs()
    async with (
        serve_middleware(fake_comfy.url) as h,
        ComfyClient(fake_comfy.url, client_id="someone-else") as other,
        asyncio.timeout(15),
    ):
        await h.http.post("/upload/image", data=image_form(png()))
        fake_comfy.hold()
        running = (await (await h.http.post("/queue")).json())["job_id"]
        await fake_comfy.wait_for_prompt(running, "running")
        foreign = (await other.submit(other_graph)).prompt_id
        pending = (await (await h.http.post("/queue")).json())["job_id"]
        await fake_comfy.wait_for_prompt(pending, "pending")

        answer = await h.http.post("/interrupt")
        assert answer.status == 200
        results = {j["job_id"]: j["result"] for j in (await answer.json())["jobs"]}
        assert results == {pending: "removed", running: "interrupted"}
        fake_comfy.release()

        assert (await h.jobs.get(running).result()).state is JobState.CANCELLED
        assert (await h.jobs.get(pending).result()).state is JobState.CANCELLED
        await fake_comfy.wait_for_prompt(foreign, "done")
    assert fake_comfy.history[foreign]["status"]["status_str"] == "success"
    assert fake_comfy.interrupts == [{"prompt_id": running}]


async def test_interrupt_one_job_leaves_the_others(fake_comfy: FakeComfy) -> None:
    async with serve_middleware(fake_comfy.url) as h, asyncio.timeout(15):
        await h.http.post("/upload/image", data=image_form(png()))
        fake_comfy.hold()
        first = (await (await h.http.post("/queue")).json())["job_id"]
        await fake_comfy.wait_for_prompt(first, "running")
        second = (await (await h.http.post("/queue")).json())["job_id"]
        await fake_comfy.wait_for_prompt(second, "pending")

        answer = await h.http.post(f"/interrupt/{second}")
        assert await answer.json() == {
            "jobs": [{"job_id": second, "prompt_id": second, "result": "removed"}]
        }
        fake_comfy.release()
        assert (await h.jobs.get(first).result()).state is JobState.DONE
        detail = await (await h.http.get(f"/jobs/{second}")).json()
    assert detail["state"] == "cancelled"
    assert detail["cancelled_by"] == "http"
    assert fake_comfy.interrupts == []


async def test_failed_job_reports_node_and_message(fake_comfy: FakeComfy) -> None:
    async with serve_middleware(fake_comfy.url, "fail") as h, asyncio.timeout(10):
        job = await (await h.http.post("/queue")).json()
        await h.jobs.get(job["job_id"]).result()
        detail = await (await h.http.get(f"/jobs/{job['job_id']}")).json()
        not_there = await h.http.get(f"/jobs/{job['job_id']}/outputs/0")
        assert not_there.status == 404
        assert (await not_there.json())["error"]["code"] == "unknown_output"
    assert detail["state"] == "failed"
    assert detail["error"]["code"] == "execution_error"
    assert detail["error"]["node_id"] == "2"
    assert detail["error"]["node_type"] == "FailNode"
    assert "the test asked this node to fail" in detail["error"]["message"]


async def test_concurrent_updates_and_queues_never_see_half_a_change(
    fake_comfy: FakeComfy,
) -> None:
    async with serve_middleware(fake_comfy.url, max_per_user=100) as h, asyncio.timeout(30):
        await h.http.post("/upload/image", data=image_form(png()))
        await h.http.post("/update/prompt", json={"text": "t0", "seed": 0})
        fake_comfy.hold()

        async def update(i: int) -> None:
            answer = await h.http.post("/update/prompt", json={"text": f"t{i}", "seed": i})
            assert answer.status == 200

        async def queue() -> str:
            return str((await (await h.http.post("/queue")).json())["job_id"])

        async def look() -> dict[str, Any]:
            return dict(await (await h.http.get("/workflow")).json())

        work: list[Any] = []
        for i in range(1, 31):
            work += [update(i), queue(), look()]
        done = await asyncio.gather(*work)
        job_ids = [d for d in done if isinstance(d, str)]
        for job_id in job_ids:
            request = h.jobs.get(job_id).request
            text = request.overrides[("2", "text")]
            assert text == f"t{request.seed}", (text, request.seed)
        for state in (d for d in done if isinstance(d, dict)):
            values, graph = state["values"], state["graph"]
            assert values["prompt"] == f"t{values['seed']}"
            assert graph["2"]["inputs"]["text"] == values["prompt"]
            assert graph["3"]["inputs"]["seed"] == values["seed"]
        await h.http.post("/interrupt")
        fake_comfy.release()


async def test_health_counts_jobs(fake_comfy: FakeComfy) -> None:
    async with serve_middleware(fake_comfy.url, "slow") as h, asyncio.timeout(10):
        fake_comfy.hold()
        job = (await (await h.http.post("/queue")).json())["job_id"]
        await fake_comfy.wait_for_prompt(job, "running")
        answer = await h.http.get("/health")
        body = await answer.json()
        fake_comfy.release()
        await h.jobs.get(job).result()
    assert answer.status == 200
    assert body["status"] == "ok"
    assert body["comfyui"] == {"connected": True, "backends": 1, "up": 1}
    assert body["jobs"]["running"] + body["jobs"]["queued"] == 1
    assert body["workflow"] == "slow"


async def test_event_stream_ends_cleanly_on_shutdown(fake_comfy: FakeComfy) -> None:
    async with serve_middleware(fake_comfy.url) as h, asyncio.timeout(10):
        events = await h.http.get("/events")
        await _connected(events)
        other = await h.http.get("/health")
        assert other.status == 200  # the open stream does not block other requests
        await h.server.close()
        rest = [item async for item in sse(events)]
    assert rest == []


async def test_event_stream_replays_jobs_that_ended_before_connecting(
    fake_comfy: FakeComfy,
) -> None:
    async with serve_middleware(fake_comfy.url, "slow") as h, asyncio.timeout(10):
        job = (await (await h.http.post("/queue")).json())["job_id"]
        await h.jobs.get(job).result()
        events = await h.http.get("/events")
        seen = await until_final(events, job)
        events.close()
    assert [s["state"] for s in seen] == ["done"]
    assert json.dumps(seen[0])  # plain JSON


async def test_queue_without_upload_fails_with_comfyuis_reason(fake_comfy: FakeComfy) -> None:
    async with serve_middleware(fake_comfy.url) as h, asyncio.timeout(10):
        job = (await (await h.http.post("/queue")).json())["job_id"]
        await h.jobs.get(job).result()
        detail = await (await h.http.get(f"/jobs/{job}")).json()
    assert detail["state"] == "failed"
    assert detail["error"]["code"] == "prompt_rejected"
    assert "node 1 (LoadImage), input image" in detail["error"]["message"]
    assert "example.png" in detail["error"]["message"]


async def test_event_stream_sends_keep_alive_comments(fake_comfy: FakeComfy) -> None:
    options = HttpOptions(heartbeat=0.05)
    async with serve_middleware(fake_comfy.url, options=options) as h, asyncio.timeout(10):
        events = await h.http.get("/events")
        comments = []
        async for kind, text in sse(events):
            comments.append((kind, text))
            if len(comments) == 3:
                break
        events.close()
    assert comments == [("comment", "connected"), *[("comment", "keep-alive")] * 2]
