"""The fake's version switch: what ComfyUI 0.38 answers unlike 0.3.64 (read in its source)."""

from __future__ import annotations

import copy
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.comfy_prompts import slow_prompt
from tests.fakes.comfy import FakeComfy
from tests.fakes.comfy_probe import Probe, load_trace, trace_posts
from tests.fakes.comfy_versions import INVALID_PROMPT_ID

CHECKPOINT = {"checkpoints": ["random_sd15.safetensors"]}


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def post(http: aiohttp.ClientSession, url: str, body: Any = None) -> tuple[int, Any]:
    async with http.post(url, json=body) as response:
        return response.status, await response.json(content_type=None)


async def get(http: aiohttp.ClientSession, url: str) -> tuple[int, Any]:
    async with http.get(url) as response:
        return response.status, await response.json(content_type=None)


@pytest.mark.parametrize("chosen", ["comfycord-0123", str(uuid.uuid4()).upper(), 7])
async def test_038_refuses_a_prompt_id_that_is_not_a_canonical_uuid(
    http: aiohttp.ClientSession, chosen: Any
):
    async with FakeComfy(version="0.38") as fake:
        status, body = await post(
            http, f"{fake.url}/prompt", {"prompt": slow_prompt(), "prompt_id": chosen}
        )
        assert (status, body) == (400, INVALID_PROMPT_ID)
        assert fake.pending == []
        assert fake.running is None


async def test_0364_takes_any_prompt_id_and_038_mints_one_for_null(http: aiohttp.ClientSession):
    async with FakeComfy(version="0.3.64") as old, FakeComfy(version="0.38") as new:
        status, body = await post(
            http, f"{old.url}/prompt", {"prompt": slow_prompt(1), "prompt_id": "comfycord-0123"}
        )
        assert (status, body["prompt_id"]) == (200, "comfycord-0123")
        status, body = await post(
            http, f"{new.url}/prompt", {"prompt": slow_prompt(2), "prompt_id": None}
        )
        assert status == 200
        assert str(uuid.UUID(body["prompt_id"])) == body["prompt_id"]


async def test_only_038_has_the_jobs_api(http: aiohttp.ClientSession):
    async with FakeComfy(version="0.3.64") as old, FakeComfy(version="0.38") as new:
        async with http.get(f"{old.url}/api/jobs?limit=1") as response:
            assert response.status == 404
        status, body = await get(http, f"{new.url}/api/jobs?limit=1")
        assert (status, body) == (
            200,
            {"jobs": [], "pagination": {"offset": 0, "limit": 1, "total": 0, "has_more": False}},
        )
        status, body = await get(http, f"{new.url}/api/jobs?limit=0")
        assert (status, body) == (400, {"error": "limit must be a positive integer"})
        status, body = await get(http, f"{new.url}/api/jobs/{uuid.uuid4()}")
        assert (status, body) == (404, {"error": "Job not found"})


async def test_038_jobs_list_get_and_cancel(http: aiohttp.ClientSession):
    async with FakeComfy(version="0.38") as fake:
        ids = [str(uuid.uuid4()) for _ in range(3)]
        fake.hold()
        for n, prompt_id in enumerate(ids):
            body = {"prompt": slow_prompt(n, steps=2), "prompt_id": prompt_id, "client_id": "t"}
            assert (await post(http, f"{fake.url}/prompt", body))[0] == 200
        await fake.wait_for_prompt(ids[0], "running")
        status, listed = await get(http, f"{fake.url}/api/jobs?status=pending,in_progress")
        assert status == 200
        assert {job["id"]: job["status"] for job in listed["jobs"]} == {
            ids[0]: "in_progress",
            ids[1]: "pending",
            ids[2]: "pending",
        }
        _, pending = await get(http, f"{fake.url}/api/jobs/{ids[2]}")
        assert pending["status"] == "pending"
        assert pending["workflow"]["extra_data"]["client_id"] == "t"

        assert await post(http, f"{fake.url}/api/jobs/{ids[2]}/cancel") == (
            200,
            {"cancelled": True},
        )
        assert fake.pending == [ids[1]]
        assert await post(http, f"{fake.url}/api/jobs/{ids[0]}/cancel") == (
            200,
            {"cancelled": True},
        )
        fake.release()
        await fake.wait_idle()
        # Finished or unknown: a no-op, answered 200 all the same (idempotent).
        assert await post(http, f"{fake.url}/api/jobs/{ids[0]}/cancel") == (
            200,
            {"cancelled": False},
        )
        unknown = f"{fake.url}/api/jobs/{uuid.uuid4()}/cancel"
        assert await post(http, unknown) == (200, {"cancelled": False})

        _, interrupted = await get(http, f"{fake.url}/api/jobs/{ids[0]}")
        _, completed = await get(http, f"{fake.url}/api/jobs/{ids[1]}")
        assert interrupted["status"] == "cancelled"
        assert completed["status"] == "completed"
        assert completed["outputs"]["3"]["images"][0]["filename"].endswith(".png")
        assert completed["execution_status"]["status_str"] == "success"
        batch = await post(http, f"{fake.url}/api/jobs/cancel", {"job_ids": ["nope", ids[1]]})
        assert batch == (400, {"error": "job_ids contains invalid id(s)", "invalid_ids": ["nope"]})


def ksampler_body(preview_method: str | None, seed: int = 0) -> dict[str, Any]:
    [body, *_] = [
        step["request"]["request_json"]
        for step in trace_posts(load_trace("n_txt2img_ksampler.json"))
    ]
    body = copy.deepcopy(body)
    body["prompt"]["3"]["inputs"]["seed"] += seed  # a new seed: the sampler is not cached
    if preview_method is not None:
        body["extra_data"] = {"preview_method": preview_method}
    return body


async def sampler_previews(
    http: aiohttp.ClientSession, fake: FakeComfy, preview_method: str | None, seed: int = 0
) -> int:
    body = ksampler_body(preview_method, seed)
    probe = await Probe.connect(http, fake.url, body["client_id"])
    await probe.next()
    _, answer = await post(http, f"{fake.url}/prompt", body)
    frames = await probe.until_done(answer["prompt_id"])
    await probe.ws.close()
    return sum(1 for frame in frames if frame["type"].startswith("binary"))


@pytest.mark.parametrize(
    ("version", "method", "expected"),
    [
        ("0.38", "auto", True),
        ("0.38", "latent2rgb", True),
        ("0.38", "default", False),  # the start-up flag of this fake: none
        ("0.38", None, False),
        ("0.3.64", "auto", False),  # 0.3.64 ignores the key: its start-up flag decides
    ],
)
async def test_sampler_previews_follow_the_prompts_preview_method_on_038_only(
    http: aiohttp.ClientSession, version: str, method: str | None, expected: bool
):
    async with FakeComfy(version=version, models=CHECKPOINT, previews=False) as fake:
        assert (await sampler_previews(http, fake, method) > 0) is expected


async def test_038_preview_method_none_turns_a_servers_previews_off(http: aiohttp.ClientSession):
    async with FakeComfy(version="0.38", models=CHECKPOINT, previews=True) as fake:
        assert await sampler_previews(http, fake, "none") == 0
        assert await sampler_previews(http, fake, None, seed=1) > 0
