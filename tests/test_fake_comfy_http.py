"""The fake ComfyUI's HTTP answers: rejections, uploads, /view, info endpoints, history."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from typing import Any, Literal

import aiohttp
import pytest
from PIL import Image

from tests.fakes.comfy import FakeComfy
from tests.fakes.comfy_probe import Probe, load_trace, trace_posts

JSON = "application/json; charset=utf-8"


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def png(color: tuple[int, int, int], size: tuple[int, int] = (8, 8)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def without_tooltips(value: Any) -> Any:
    """The recorded object_info had its tooltip texts removed; so do its error echoes."""
    if isinstance(value, dict):
        return {k: without_tooltips(v) for k, v in value.items() if k != "tooltip"}
    if isinstance(value, list):
        return [without_tooltips(v) for v in value]
    return value


def load_invert_preview(image: str) -> dict[str, Any]:
    return {
        "1": {"class_type": "LoadImage", "inputs": {"image": image}},
        "2": {"class_type": "ImageInvert", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 0]}},
    }


async def upload(
    http: aiohttp.ClientSession, url: str, name: str, data: bytes, **fields: str
) -> tuple[int, Any]:
    form = aiohttp.FormData()
    form.add_field(fields.pop("field", "image"), data, filename=name, content_type="image/png")
    for key, value in fields.items():
        form.add_field(key, value)
    async with http.post(f"{url}/upload/image", data=form) as response:
        body = await response.json() if response.content_type == "application/json" else None
        return response.status, body


async def run(http: aiohttp.ClientSession, fake: FakeComfy, prompt: dict[str, Any]) -> Any:
    probe = await Probe.connect(http, fake.url, "runner")
    await probe.next()
    async with http.post(f"{fake.url}/prompt", json={"prompt": prompt, "client_id": "runner"}) as r:
        assert r.status == 200, await r.text()
        prompt_id = (await r.json())["prompt_id"]
    frames = await probe.until_done(prompt_id)
    await probe.ws.close()
    return frames[-3]


async def test_invalid_prompts_are_rejected_as_in_trace_c(
    fake_comfy: FakeComfy, http: aiohttp.ClientSession
):
    steps = trace_posts(load_trace("c_invalid_prompt.json"))
    for step in steps:
        request, expected = step["request"], step["response"]
        if "request_json" in request:
            kwargs: dict[str, Any] = {"json": request["request_json"]}
        else:
            kwargs = {"data": request["request_body_text"], "headers": request["request_headers"]}
        async with http.post(f"{fake_comfy.url}/prompt", **kwargs) as response:
            assert response.status == expected["status"], request["label"]
            assert response.headers["Content-Type"] == expected["headers"]["Content-Type"]
            if "body_json" in expected:
                assert await response.json() == without_tooltips(expected["body_json"])
            else:
                assert await response.text() == expected["body_text"]
    assert fake_comfy.pending == []
    assert fake_comfy.running is None
    body = {"prompt": load_invert_preview("x.png")}
    fake_comfy.uploads["x.png"] = png((1, 2, 3))
    async with http.post(f"{fake_comfy.url}/prompt", json=body) as response:
        assert (await response.json())["number"] == len(steps) - 1  # the non-JSON one took none


async def test_partial_validation_queues_the_good_outputs(
    fake_comfy: FakeComfy, http: aiohttp.ClientSession
):
    fake_comfy.uploads["ok.png"] = png((9, 9, 9))
    prompt = {
        **load_invert_preview("ok.png"),
        "4": {"class_type": "PreviewImage", "inputs": {}},
    }
    async with http.post(f"{fake_comfy.url}/prompt", json={"prompt": prompt}) as response:
        answer = await response.json()
    assert response.status == 200
    assert answer["node_errors"]["4"]["errors"][0]["type"] == "required_input_missing"
    await fake_comfy.wait_for_prompt(answer["prompt_id"], "done")
    assert fake_comfy.history[answer["prompt_id"]]["prompt"][4] == ["3"]


async def test_upload_naming_follows_trace_g(fake_comfy: FakeComfy, http: aiohttp.ClientSession):
    url, a, b, c, d = fake_comfy.url, png((1, 0, 0)), png((2, 0, 0)), png((3, 0, 0)), png((4, 0, 0))
    plain = {"subfolder": "", "type": "input"}
    assert await upload(http, url, "g.png", a) == (200, {"name": "g.png", **plain})
    assert await upload(http, url, "g.png", a) == (200, {"name": "g.png", **plain})
    assert await upload(http, url, "g.png", b) == (200, {"name": "g (1).png", **plain})
    assert await upload(http, url, "g.png", b) == (200, {"name": "g (1).png", **plain})
    assert await upload(http, url, "g.png", c) == (200, {"name": "g (2).png", **plain})
    assert await upload(http, url, "g.png", d, overwrite="true") == (
        200,
        {"name": "g.png", **plain},
    )
    assert fake_comfy.uploads["g.png"] == d
    _, body = await upload(http, url, "s.png", a, subfolder="trace_sub")
    assert body == {"name": "s.png", "subfolder": "trace_sub", "type": "input"}
    assert fake_comfy.uploads["trace_sub/s.png"] == a
    assert (await upload(http, url, "t.png", a, type="temp"))[1]["type"] == "temp"
    assert await upload(http, url, "f.png", b"not an image") == (200, {"name": "f.png", **plain})
    assert (await upload(http, url, "n.txt", b"text"))[0] == 200
    assert (await upload(http, url, "../e.png", a))[1]["name"] == "..%2Fe.png"
    assert (await upload(http, url, "x.png", a, subfolder="../escape"))[0] == 400
    assert (await upload(http, url, "x.png", a, subfolder="/tmp"))[0] == 400
    assert (await upload(http, url, "x.png", a, field="notimage"))[0] == 400
    assert (await upload(http, url, "x.png", a, type="bogus"))[0] == 500

    raw = (
        b'------b\r\nContent-Disposition: form-data; name="image"; filename="../raw.png"\r\n'
        b"Content-Type: image/png\r\n\r\n" + a + b"\r\n------b--\r\n"
    )
    headers = {"Content-Type": "multipart/form-data; boundary=----b"}
    async with http.post(f"{url}/upload/image", data=raw, headers=headers) as response:
        assert response.status == 400

    async with http.get(f"{url}/object_info/LoadImage") as response:
        choices = (await response.json())["LoadImage"]["input"]["required"]["image"][0]
    assert choices == ["..%2Fe.png", "f.png", "g (1).png", "g (2).png", "g.png"]


async def test_load_image_runs_validates_and_fails_as_in_trace_g(
    fake_comfy: FakeComfy, http: aiohttp.ClientSession
):
    url = fake_comfy.url
    await upload(http, url, "real.png", png((5, 5, 5), (24, 20)))
    await upload(http, url, "real.png", png((5, 5, 5)), subfolder="sub")
    await upload(http, url, "out.png", png((6, 6, 6)), type="output")
    await upload(http, url, "fake.png", b"no image here")
    for name in ("real.png", "sub/real.png", "out.png [output]"):
        assert (await run(http, fake_comfy, load_invert_preview(name)))[
            "type"
        ] == "execution_success"

    error = (await run(http, fake_comfy, load_invert_preview("fake.png")))["data"]
    assert error["exception_type"] == "PIL.UnidentifiedImageError"
    assert (
        error["exception_message"] == "cannot identify image file '/srv/ComfyUI/input/fake.png'\n"
    )
    assert error["current_inputs"] == {"image": ["fake.png"]}
    assert (error["node_id"], error["executed"]) == ("1", [])

    body = {"prompt": load_invert_preview("nope.png")}
    async with http.post(f"{url}/prompt", json=body) as response:
        assert response.status == 400
        reason = (await response.json())["node_errors"]["1"]["errors"][0]
    assert reason["details"] == "image - Invalid image file: nope.png"


async def test_view_serves_outputs_and_refuses_as_recorded(
    fake_comfy: FakeComfy, http: aiohttp.ClientSession
):
    fake_comfy.uploads["v.png"] = png((7, 7, 7), (40, 24))
    frame = await run(http, fake_comfy, load_invert_preview("v.png"))
    assert frame["type"] == "execution_success"
    image = next(iter(fake_comfy.history.values()))["outputs"]["3"]["images"][0]
    url = f"{fake_comfy.url}/view"
    async with http.get(url, params=image) as response:
        assert response.status == 200
        assert response.headers["Content-Disposition"] == f'filename="{image["filename"]}"'
        assert "Etag" in response.headers
        assert response.headers["Accept-Ranges"] == "bytes"
        assert Image.open(io.BytesIO(await response.read())).size == (40, 24)
    async with http.get(url, params={**image, "preview": "webp;50"}) as response:
        assert response.content_type == "image/webp"
    async with http.get(url, params={**image, "channel": "a"}) as response:
        assert response.content_type == "image/png"
    refusals = [
        ({"filename": "does_not_exist.png", "subfolder": "", "type": "output"}, 404),
        ({"filename": "../comfyui_version.py", "type": "output"}, 400),
        ({"filename": image["filename"], "subfolder": "../", "type": "temp"}, 403),
        ({"filename": image["filename"], "type": "bogus"}, 400),
        ({}, 404),
    ]
    for params, status in refusals:
        async with http.get(url, params=params) as response:
            assert (response.status, await response.read()) == (status, b""), params


async def test_info_endpoints_answer_as_trace_h(fake_comfy: FakeComfy, http: aiohttp.ClientSession):
    recorded = {
        step["request"]["path"]: step["response"]
        for step in load_trace("h_info_endpoints.json")["steps"]
        if step["kind"] == "http"
    }
    paths = ["/system_stats", "/features", "/models", "/models/checkpoints", "/embeddings"]
    paths += ["/object_info/NoSuchNode", "/queue", "/prompt", "/history/not-a-real-id"]
    for prefix in ("", "/api"):
        for path in paths:
            async with http.get(f"{fake_comfy.url}{prefix}{path}") as response:
                assert response.headers["Content-Type"] == JSON
                body = await response.json()
            expected = recorded[path]["body_json"]
            if path == "/system_stats":
                assert body["system"].keys() == expected["system"].keys()
                assert body["devices"][0].keys() == expected["devices"][0].keys()
            else:
                assert body == expected, path
    async with http.get(f"{fake_comfy.url}/object_info/SlowProgress") as response:
        slow = (await response.json())["SlowProgress"]
    expected = recorded["/object_info/SlowProgress"]["body_json"]["SlowProgress"]
    assert slow["input"] == expected["input"]
    assert set(slow) == set(expected)
    async with http.get(f"{fake_comfy.url}/object_info") as response:
        assert len(await response.json()) >= 482
    async with http.post(f"{fake_comfy.url}/free", json={}) as response:
        assert response.status == 200
        assert response.headers["Content-Length"] == "0"
        assert "Content-Type" not in response.headers


async def test_models_are_injected_into_loader_choices(http: aiohttp.ClientSession):
    models = {"checkpoints": ["sdxl.safetensors"], "upscale_models": ["4x.pth"]}
    async with FakeComfy(models=models) as fake:
        async with http.get(f"{fake.url}/object_info/CheckpointLoaderSimple") as response:
            spec = (await response.json())["CheckpointLoaderSimple"]["input"]["required"]
        assert spec["ckpt_name"][0] == ["sdxl.safetensors"]
        async with http.get(f"{fake.url}/object_info/UpscaleModelLoader") as response:
            spec = (await response.json())["UpscaleModelLoader"]["input"]["required"]
        assert spec["model_name"][1]["options"] == ["4x.pth"]
        async with http.get(f"{fake.url}/models/checkpoints") as response:
            assert await response.json() == ["sdxl.safetensors"]
        prompt = load_trace("n_txt2img_ksampler.json")
        body = trace_posts(prompt)[0]["request"]["request_json"]
        async with http.post(f"{fake.url}/prompt", json=body) as response:
            errors = (await response.json())["node_errors"]
        assert errors["4"]["errors"][0]["type"] == "value_not_in_list"


async def test_client_prompt_ids_extra_data_and_history_paging(
    fake_comfy: FakeComfy, http: aiohttp.ClientSession
):
    fake_comfy.uploads["h.png"] = png((8, 8, 8))
    url = fake_comfy.url
    body = {
        "prompt": load_invert_preview("h.png"),
        "client_id": "c",
        "prompt_id": "botjob-1",
        "extra_data": {"discord": {"user": "1234"}},
    }
    async with http.post(f"{url}/api/prompt", json=body) as response:
        assert (await response.json())["prompt_id"] == "botjob-1"
    await fake_comfy.wait_for_prompt("botjob-1", "done")
    assert fake_comfy.history["botjob-1"]["prompt"][3] == {
        "discord": {"user": "1234"},
        "client_id": "c",
    }
    other = {"prompt": load_invert_preview("h.png"), "prompt_id": "other"}
    async with http.post(f"{url}/prompt", json=other) as response:
        assert response.status == 200
    await fake_comfy.wait_for_prompt("other", "done")
    async with http.get(f"{url}/history", params={"max_items": "1", "offset": "0"}) as response:
        assert list(await response.json()) == ["botjob-1"]
    async with http.get(f"{url}/history", params={"max_items": "1"}) as response:
        assert list(await response.json()) == ["other"]
    async with http.post(f"{url}/history", json={"delete": ["botjob-1"]}) as response:
        assert response.status == 200
    async with http.get(f"{url}/history/botjob-1") as response:
        assert await response.json() == {}
    assert ("POST", "/api/prompt") in fake_comfy.requests


async def test_slow_delays_http_answers(fake_comfy: FakeComfy, http: aiohttp.ClientSession):
    fake_comfy.slow = 0.5
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.1), http.get(f"{fake_comfy.url}/system_stats"):
            pass
    fake_comfy.slow = 0
    async with http.get(f"{fake_comfy.url}/system_stats") as response:
        assert response.status == 200
    assert fake_comfy.requests.count(("GET", "/system_stats")) == 2


@pytest.mark.parametrize(
    ("kind", "content_type"), [("html", "text/html"), ("json", "application/json")]
)
async def test_strange_answers_without_doing_the_request(
    fake_comfy: FakeComfy,
    http: aiohttp.ClientSession,
    kind: Literal["html", "json"],
    content_type: str,
):
    fake_comfy.answer_strangely(kind)
    async with http.post(f"{fake_comfy.url}/prompt", json={"prompt": {}}) as response:
        assert response.status == 200
        assert response.content_type == content_type
        body = await response.text()
    assert "prompt_id" not in body
    assert fake_comfy.pending == []
    assert fake_comfy.history == {}
    fake_comfy.answer_normally()
    async with http.get(f"{fake_comfy.url}/queue") as response:
        assert await response.json() == {"queue_running": [], "queue_pending": []}


async def test_strange_answers_for_some_paths_a_number_of_times(
    fake_comfy: FakeComfy, http: aiohttp.ClientSession
):
    fake_comfy.answer_strangely("html", paths=["/queue"], count=1)
    async with http.get(f"{fake_comfy.url}/system_stats") as response:
        assert response.content_type == "application/json"
    async with http.get(f"{fake_comfy.url}/queue") as response:
        assert response.content_type == "text/html"
    async with http.get(f"{fake_comfy.url}/queue") as response:
        assert response.content_type == "application/json"
