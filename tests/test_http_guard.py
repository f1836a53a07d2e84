"""comfycord serve refuses what browsers send for other sites: CSRF, DNS rebinding, GET /queue."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.config import Settings
from bot.http.guard import is_loopback_host
from bot.http.serve import HttpOptions
from tests.fakes.comfy import FakeComfy
from tests.http_harness import (
    Harness,
    assert_nothing_sent,
    image_form,
    json_error,
    png,
    serve_middleware,
)

EVIL = "https://evil.example"


async def _state(h: Harness) -> dict[str, Any]:
    answer = await h.http.get("/workflow")
    assert answer.status == 200, await answer.text()
    state: dict[str, Any] = await answer.json()
    return state


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("[::1]", True),
        ("localhost", True),
        ("LOCALHOST.", True),
        ("app.localhost", True),
        ("rebind.evil.example", False),
        ("127.0.0.1.nip.io", False),
        ("0.0.0.0", False),
        ("", False),
    ],
)
def test_loopback_names_are_recognised_without_resolving(name: str, expected: bool) -> None:
    assert is_loopback_host(name) is expected


async def test_a_text_plain_update_from_a_foreign_origin_changes_nothing(
    fake_comfy: FakeComfy,
) -> None:
    async with serve_middleware(fake_comfy.url) as h:
        answer = await h.http.post(
            "/update/prompt",
            data=b'{"text": "pwned"}',
            headers={"Content-Type": "text/plain", "Origin": EVIL},
        )
        assert "evil.example" in await json_error(answer, 403, "forbidden")
        state = await _state(h)
    assert state["values"] == {}


async def test_json_routes_take_only_application_json(fake_comfy: FakeComfy) -> None:
    async with serve_middleware(fake_comfy.url) as h:
        for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
            headers = {"Content-Type": content_type} if content_type else {}
            answer = await h.http.post("/update/prompt", data=b'{"seed": 5}', headers=headers)
            message = await json_error(answer, 415, "unsupported_media_type")
            assert "application/json" in message
        ok = await h.http.post(
            "/update/prompt",
            data=b'{"seed": 5}',
            headers={"Content-Type": "application/json; charset=utf-8"},
        )
        assert ok.status == 200, await ok.text()
        assert (await _state(h))["values"] == {"seed": 5}


async def test_a_cross_origin_upload_is_refused(fake_comfy: FakeComfy) -> None:
    async with serve_middleware(fake_comfy.url) as h:
        answer = await h.http.post(
            "/upload/image", data=image_form(png()), headers={"Origin": "null"}
        )
        await json_error(answer, 403, "forbidden")
        state = await _state(h)
    assert state["images"][0]["filename"] is None
    assert_nothing_sent(fake_comfy)


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Dest": "image"},  # <img src=.../queue>
        {"Sec-Fetch-Site": "same-site"},  # a page on another port of localhost
        {"Origin": EVIL},
    ],
)
async def test_get_queue_from_a_browser_for_another_site_queues_nothing(
    fake_comfy: FakeComfy, headers: dict[str, str]
) -> None:
    async with serve_middleware(fake_comfy.url, "slow") as h:
        await json_error(await h.http.get("/queue", headers=headers), 403, "forbidden")
        assert h.jobs.jobs == {}
    assert_nothing_sent(fake_comfy)


async def test_get_queue_still_works_for_curl_and_the_address_bar(fake_comfy: FakeComfy) -> None:
    async with serve_middleware(fake_comfy.url, "slow") as h, asyncio.timeout(10):
        plain = await h.http.get("/queue")
        assert plain.status == 202, await plain.text()
        typed = await h.http.get("/queue", headers={"Sec-Fetch-Site": "none"})
        assert typed.status == 202, await typed.text()
        for job in list(h.jobs.jobs.values()):
            await job.result()


async def test_the_servers_own_origin_is_accepted(fake_comfy: FakeComfy) -> None:
    async with serve_middleware(fake_comfy.url) as h:
        own = f"http://127.0.0.1:{h.server.port}"
        answer = await h.http.post(
            "/update/prompt",
            json={"seed": 3},
            headers={"Origin": own, "Sec-Fetch-Site": "same-origin"},
        )
        assert answer.status == 200, await answer.text()
        other_port = f"http://127.0.0.1:{h.server.port + 1}"
        refused = await h.http.post(
            "/update/prompt", json={"seed": 4}, headers={"Origin": other_port}
        )
        await json_error(refused, 403, "forbidden")
        assert (await _state(h))["values"] == {"seed": 3}


@pytest.mark.parametrize("path", ["/workflow", "/jobs/x", "/health", "/events"])
async def test_a_rebound_host_name_reads_nothing(fake_comfy: FakeComfy, path: str) -> None:
    async with serve_middleware(fake_comfy.url) as h:
        answer = await h.http.get(path, headers={"Host": f"rebind.evil.example:{h.server.port}"})
        message = await json_error(answer, 403, "forbidden")
    assert "rebind.evil.example" in message
    assert "HTTP_ALLOWED_HOSTS" in message


async def test_allowed_hosts_and_a_token_let_other_names_in(fake_comfy: FakeComfy) -> None:
    listed = HttpOptions(allowed_hosts=frozenset({"comfy.lan", "Proxy.Example:443"}))
    async with serve_middleware(fake_comfy.url, options=listed) as h:
        assert (await h.http.get("/workflow", headers={"Host": "comfy.lan:8189"})).status == 200
        assert (await h.http.get("/workflow", headers={"Host": "proxy.example"})).status == 200
        other = await h.http.get("/workflow", headers={"Host": "other.lan"})
        await json_error(other, 403, "forbidden")
    with_token = HttpOptions(token="t" * 32)
    async with serve_middleware(fake_comfy.url, options=with_token) as h:
        answer = await h.http.get(
            "/workflow", headers={"Host": "gpu-box:8189", "Authorization": "Bearer " + "t" * 32}
        )
        assert answer.status == 200, await answer.text()


@pytest.mark.parametrize(
    "name",
    [
        "ComfyUI_00001_.png [output]",
        "x.png [temp]",
        "secret/x.png",
        "..\\x.png",
        "../x.png",
        ".hidden.png",
        "",
    ],
)
async def test_load_image_overrides_take_plain_input_names_only(
    fake_comfy: FakeComfy, name: str
) -> None:
    async with serve_middleware(fake_comfy.url) as h:
        answer = await h.http.post(
            "/update/prompt", json={"node_id": "1", "input": "image", "value": name}
        )
        message = await json_error(answer, 422, "invalid_input")
        as_text = {"node_id": "1", "input": "image", "text": name}
        await json_error(await h.http.post("/update/prompt", json=as_text), 422, "invalid_input")
        state = await _state(h)
    assert "no folders, no [output]" in message
    assert state["overrides"] == []
    assert_nothing_sent(fake_comfy)


async def test_a_plain_input_name_override_is_kept(fake_comfy: FakeComfy) -> None:
    async with serve_middleware(fake_comfy.url) as h:
        body = {"node_id": "1", "input": "image", "value": "uploaded cat (2).png"}
        answer = await h.http.post("/update/prompt", json=body)
        assert answer.status == 200, await answer.text()
        assert (await _state(h))["graph"]["1"]["inputs"]["image"] == "uploaded cat (2).png"


def test_the_options_come_from_the_settings() -> None:
    settings = Settings.from_env(
        {"HTTP_ALLOWED_HOSTS": "comfy.lan", "HTTP_MAX_EVENT_STREAMS": "12"}
    )
    options = HttpOptions.from_settings(settings)
    assert options.allowed_hosts == frozenset({"comfy.lan"})
    assert options.max_event_streams == 12
