"""Bad input over HTTP, route by route and header by header: a 4xx JSON error, nothing sent on.

Each case is one request to `comfycord serve` (on a JobQueue over FakeComfy); it must answer the
status and error code given, with a message, and FakeComfy must see no POST from then on.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from bot.http.serve import HttpOptions
from tests.bad_input import (
    REFUSED_FORMATS,
    Sent,
    bad_input,
    eps,
    huge_canvas_png,
    in_format,
    multipage_tiff,
    not_an_image,
    png,
    truncated_png,
)
from tests.fakes.comfy import FakeComfy
from tests.http_harness import Harness, image_form, serve_middleware

pytestmark = bad_input

TOKEN = "s3cret-token"
JSON = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class Answer:
    """What the server answered: status, content type and body."""

    status: int
    content_type: str
    body: bytes


Send = Callable[[Harness], Awaitable[Answer]]


@dataclass(frozen=True)
class Case:
    """One bad request, the answer expected, and the server it is sent to."""

    name: str
    send: Send
    status: int
    code: str | None  # None: any code, for aiohttp's own refusals before our handlers
    workflow: str = "http_text"
    options: HttpOptions = field(default_factory=HttpOptions)

    def __str__(self) -> str:
        return self.name


def request(method: str, path: str, **kwargs: Any) -> Send:
    """Send one request through the test client (aiohttp's own encoding)."""

    async def send(h: Harness) -> Answer:
        async with h.http.request(method, path, **kwargs) as answer:
            return Answer(answer.status, answer.content_type, await answer.read())

    return send


def upload(data: bytes, name: str = "in.png", query: str = "", **fields: str) -> Send:
    """POST /upload/image with `data` in the `image` field."""

    async def send(h: Harness) -> Answer:
        form = image_form(data, name, **fields)
        async with h.http.post(f"/upload/image{query}", data=form) as answer:
            return Answer(answer.status, answer.content_type, await answer.read())

    return send


def raw(head: bytes) -> Send:
    """Write a request's bytes straight to the socket (headers aiohttp's client would not send)."""

    async def send(h: Harness) -> Answer:
        reader, writer = await asyncio.open_connection(h.server.host, h.server.port)
        try:
            writer.write(head)
            await writer.drain()
            data = await reader.read()
        finally:
            writer.close()
            await writer.wait_closed()
        header, _, body = data.partition(b"\r\n\r\n")
        lines = header.decode("latin-1").split("\r\n")
        fields = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
        content_type = fields.get("Content-Type", "").split(";")[0]
        return Answer(int(lines[0].split()[1]), content_type, body)

    return send


def upload_with(data: bytes, headers: dict[str, str]) -> Send:
    """POST /upload/image with extra headers."""

    async def send(h: Harness) -> Answer:
        form = image_form(data)
        async with h.http.post("/upload/image", data=form, headers=headers) as answer:
            return Answer(answer.status, answer.content_type, await answer.read())

    return send


def update_raw(body: bytes) -> Send:
    """POST /update/prompt with these exact bytes as a JSON body."""
    return request("POST", "/update/prompt", data=body, headers=JSON)


def update(body: Any) -> Send:
    """POST /update/prompt with a JSON body."""
    return request("POST", "/update/prompt", data=json.dumps(body), headers=JSON)


TOKENED = HttpOptions(token=TOKEN)
SMALL = HttpOptions(max_body_bytes=4096, max_image_bytes=2048)
CASES = [
    Case(
        "update: not JSON",
        request("POST", "/update/prompt", data=b'{"te', headers=JSON),
        400,
        "malformed_json",
    ),
    Case("update: a JSON list", update([]), 400, "bad_request"),
    Case("update: an empty object", update({}), 400, "bad_request"),
    Case("update: unknown node", update({"node_id": "99", "text": "x"}), 404, "unknown_node"),
    Case(
        "update: node without that input",
        update({"node_id": "3", "text": "x"}),
        422,
        "invalid_input",
    ),
    Case("update: node input without value", update({"node_id": "2"}), 400, "bad_request"),
    Case("update: seed as text", update({"seed": "five"}), 422, "invalid_input"),
    Case("update: steps over the range", update({"steps": 9999}), 422, "invalid_input"),
    Case("update: negative steps", update({"steps": -1}), 422, "invalid_input"),
    Case("update: steps as a float", update({"steps": 2.5}), 422, "invalid_input"),
    Case("update: steps as a bool", update({"steps": True}), 422, "invalid_input"),
    Case("update: unknown key", update({"colour": "red"}), 422, "invalid_input"),
    Case("update: image name by hand", update({"image": "x.png"}), 422, "invalid_input"),
    Case("update: text as a number", update({"text": 5}), 422, "invalid_input"),
    Case("update: cfg the workflow lacks", update({"cfg": 7}), 422, "invalid_input"),
    Case(
        "update: text to a workflow without",
        update({"text": "a cat"}),
        422,
        "no_prompt_input",
        "demo",
    ),
    Case(
        "update: body over the limit",
        update({"text": "x" * 5000}),
        413,
        "body_too_large",
        options=SMALL,
    ),
    Case(
        "upload: not multipart",
        request("POST", "/upload/image", data=b"x", headers=JSON),
        400,
        "bad_request",
    ),
    Case(
        "upload: no image field",
        request("POST", "/upload/image", data={"picture": "x"}),
        400,
        "bad_request",
    ),
    Case("upload: text named .png", upload(not_an_image()), 422, "invalid_image", "demo"),
    Case("upload: empty file", upload(b""), 422, "invalid_image", "demo"),
    Case(
        "upload: over the image limit", upload(png(64, 64) + bytes(4000)), 413, None, "demo", SMALL
    ),
    Case("upload: no such input", upload(png(), query="?input=1"), 422, "no_image_input", "demo"),
    Case("upload: input not a number", upload(png(), input="first"), 400, "bad_request", "demo"),
    Case("upload: workflow without image input", upload(png()), 422, "no_image_input", "slow"),
    Case("jobs: unknown job", request("GET", "/jobs/nope"), 404, "unknown_job"),
    Case(
        "jobs: outputs of an unknown job",
        request("GET", "/jobs/nope/outputs/0"),
        404,
        "unknown_job",
    ),
    Case(
        "jobs: output index not a number", request("GET", "/jobs/x/outputs/first"), 404, "not_found"
    ),
    Case("interrupt: unknown job", request("POST", "/interrupt/nope"), 404, "unknown_job"),
    Case("route: unknown path", request("GET", "/nowhere"), 404, "not_found"),
    Case("route: wrong method", request("DELETE", "/queue"), 405, "method_not_allowed"),
    Case(
        "route: PUT on update", request("PUT", "/update/prompt", json={}), 405, "method_not_allowed"
    ),
    Case("auth: no token", request("POST", "/queue"), 401, "unauthorized", options=TOKENED),
    Case(
        "auth: wrong token",
        request("POST", "/queue", headers={"Authorization": "Bearer nope"}),
        401,
        "unauthorized",
        options=TOKENED,
    ),
    Case(
        "auth: not a bearer token",
        request("POST", "/queue", headers={"Authorization": f"Basic {TOKEN}"}),
        401,
        "unauthorized",
        options=TOKENED,
    ),
    Case(
        "auth: token in the query",
        request("POST", f"/queue?token={TOKEN}"),
        401,
        "unauthorized",
        options=TOKENED,
    ),
    Case("auth: upload without token", upload(png()), 401, "unauthorized", "demo", TOKENED),
    Case(
        "auth: events without token",
        request("GET", "/events"),
        401,
        "unauthorized",
        options=TOKENED,
    ),
]
CASES += [
    # Browsers acting for other sites, and foreign host names (CSRF, DNS rebinding).
    Case(
        "browser: foreign Origin on update",
        request(
            "POST", "/update/prompt", json={"text": "x"}, headers={"Origin": "https://evil.example"}
        ),
        403,
        "forbidden",
    ),
    Case(
        "browser: foreign Origin on upload",
        upload_with(png(), {"Origin": "https://evil.example"}),
        403,
        "forbidden",
        "demo",
    ),
    Case(
        "browser: Origin null",
        request("POST", "/queue", headers={"Origin": "null"}),
        403,
        "forbidden",
    ),
    Case(
        "browser: GET /queue cross-site",
        request("GET", "/queue", headers={"Sec-Fetch-Site": "cross-site"}),
        403,
        "forbidden",
    ),
    Case(
        "browser: POST /queue same-site",
        request("POST", "/queue", headers={"Sec-Fetch-Site": "same-site"}),
        403,
        "forbidden",
    ),
    Case(
        "browser: GET /queue from a foreign page",
        request("GET", "/queue", headers={"Origin": "http://evil.example"}),
        403,
        "forbidden",
    ),
    Case(
        "host: rebinding name",
        request("GET", "/workflow", headers={"Host": "rebind.evil.example:8189"}),
        403,
        "forbidden",
    ),
    Case(
        "host: rebinding name on queue",
        request("POST", "/queue", headers={"Host": "rebind.evil.example"}),
        403,
        "forbidden",
    ),
    Case(
        "host: port not a number",
        request("GET", "/jobs/x", headers={"Host": "127.0.0.1:http"}),
        403,
        "forbidden",
    ),
    Case(
        "json: text/plain body",
        request(
            "POST", "/update/prompt", data=b'{"text": "x"}', headers={"Content-Type": "text/plain"}
        ),
        415,
        "unsupported_media_type",
    ),
    Case(
        "json: form-encoded body",
        request("POST", "/update/prompt", data={"text": "x"}),
        415,
        "unsupported_media_type",
    ),
    Case(
        "json: nested 100000 deep",
        update_raw(b"[" * 100_000 + b"]" * 100_000),
        400,
        "malformed_json",
    ),
    Case(
        "json: nested 40 deep",
        update({"text": json.loads("[" * 40 + "]" * 40)}),
        400,
        "malformed_json",
    ),
    Case("json: not UTF-8", update_raw(b'{"text": "\xff"}'), 400, "malformed_json"),
    Case(
        "upload: input a superscript digit",
        upload(png(), query="?input=%C2%B2"),
        400,
        "bad_request",
        "demo",
    ),
    Case(
        "upload: input 5000 digits",
        upload(png(), query="?input=" + "9" * 5000),
        400,
        "bad_request",
        "demo",
    ),
    Case("upload: input negative", upload(png(), query="?input=-1"), 400, "bad_request", "demo"),
    Case(
        "upload: bad multipart boundary",
        request(
            "POST",
            "/upload/image",
            data=b"--x\r\nbroken",
            headers={"Content-Type": "multipart/form-data; boundary=x"},
        ),
        400,
        "malformed_form",
        "demo",
    ),
    Case(
        "upload: multipart cut short",
        request(
            "POST",
            "/upload/image",
            data=b"--x\r\nContent-Disposition: form-data; "
            b'name="image"; filename="a.png"\r\n\r\nabc',
            headers={"Content-Type": "multipart/form-data; boundary=x"},
        ),
        400,
        "malformed_form",
        "demo",
    ),
    Case(
        "upload: multipart without a boundary",
        request(
            "POST",
            "/upload/image",
            data=b"--x\r\n\r\n--x--\r\n",
            headers={"Content-Type": "multipart/form-data"},
        ),
        400,
        None,
        "demo",
    ),
    Case(
        "upload: multipart part without headers",
        request(
            "POST",
            "/upload/image",
            data=b"--x\r\n\r\nabc\r\n--x--\r\n",
            headers={"Content-Type": "multipart/form-data; boundary=x"},
        ),
        400,
        None,
        "demo",
    ),
    Case(
        "jobs: output index of 5000 digits",
        request("GET", "/jobs/x/outputs/" + "7" * 5000),
        404,
        "unknown_job",
    ),
    Case(
        "auth: header with byte 0xFF",
        raw(
            b"POST /queue HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \xff\r\n"
            b"Content-Length: 0\r\nConnection: close\r\n\r\n"
        ),
        401,
        "unauthorized",
        options=TOKENED,
    ),
    Case(
        "auth: header with byte 0xFF, no token set",
        raw(
            b"GET /jobs/nope HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: \xff\xfe\r\n"
            b"Connection: close\r\n\r\n"
        ),
        404,
        "unknown_job",
    ),
    Case(
        "headers: one over 8 KB",
        raw(
            b"GET /workflow HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: "
            + b"a" * 9000
            + b"\r\nConnection: close\r\n\r\n"
        ),
        400,
        None,
    ),
    Case(
        "headers: request line over 8 KB",
        raw(b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"),
        400,
        None,
    ),
    Case("headers: not HTTP", raw(b"HELLO\r\n\r\n"), 400, None),
    # Values ComfyUI would take but should never get (built-in ranges, image names).
    Case("update: steps 10**300", update({"steps": 10**300}), 422, "invalid_input"),
    Case("update: width not a multiple of 8", update({"width": 100}), 422, "invalid_input", "slow"),
    Case("update: width 10**6", update({"width": 10**6}), 422, "invalid_input", "slow"),
    Case("update: height 0", update({"height": 0}), 422, "invalid_input", "slow"),
    Case(
        "update: LoadImage at another user's output",
        update({"node_id": "1", "input": "image", "value": "ComfyUI_00001_.png [output]"}),
        422,
        "invalid_input",
    ),
    Case(
        "update: LoadImage at a temp file",
        update({"node_id": "1", "input": "image", "value": "x.png [temp]"}),
        422,
        "invalid_input",
    ),
    Case(
        "update: LoadImage up a folder",
        update({"node_id": "1", "input": "image", "value": "../secrets.png"}),
        422,
        "invalid_input",
    ),
    Case(
        "update: LoadImage with a backslash",
        update({"node_id": "1", "input": "image", "value": "a\\b.png"}),
        422,
        "invalid_input",
    ),
    # Image files the input check decodes and refuses.
    Case("upload: truncated PNG", upload(truncated_png()), 422, "invalid_image", "demo"),
    Case("upload: huge canvas PNG", upload(huge_canvas_png()), 422, "invalid_image", "demo"),
    Case("upload: EPS named .png", upload(eps()), 422, "invalid_image", "demo"),
]

CASES += [
    Case(f"upload: {kind} named .png", upload(in_format(kind)), 422, "invalid_image", "demo")
    for kind in REFUSED_FORMATS
]
CASES.append(
    Case("upload: multi-page TIFF", upload(multipage_tiff()), 422, "invalid_image", "demo")
)


@pytest.mark.parametrize("case", CASES, ids=str)
async def test_bad_http_input_is_refused_and_nothing_reaches_comfyui(
    case: Case, fake_comfy: FakeComfy
) -> None:
    async with serve_middleware(fake_comfy.url, case.workflow, case.options) as h:
        sent = Sent(fake_comfy)
        async with asyncio.timeout(10):
            answer = await case.send(h)
        state = await (await h.http.get("/workflow", headers=_auth(case))).json()

    assert answer.status == case.status, answer
    assert answer.content_type == "application/json", answer
    error = json.loads(answer.body)["error"]
    if case.code is not None:
        assert error["code"] == case.code, error
    assert error["message"]
    assert "Traceback" not in error["message"]
    assert sent.posts() == []
    assert h.jobs.jobs == {}
    if answer.status != 401:
        assert state["values"] == {}
        assert state["overrides"] == []


def _auth(case: Case) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"} if case.options.token else {}
