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


def upload(
    data: bytes,
    name: str = "in.png",
    query: str = "",
    headers: dict[str, str] | None = None,
    **fields: str,
) -> Send:
    """POST /upload/image with `data` in the `image` field (a new form for each send)."""

    async def send(h: Harness) -> Answer:
        form = image_form(data, name, **fields)
        return await request("POST", f"/upload/image{query}", data=form, headers=headers)(h)

    return send


def multipart(body: bytes, content_type: str = "multipart/form-data; boundary=x") -> Send:
    """POST /upload/image with these exact bytes as a multipart body."""
    return request("POST", "/upload/image", data=body, headers={"Content-Type": content_type})


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


def update_raw(body: bytes) -> Send:
    """POST /update/prompt with these exact bytes as a JSON body."""
    return request("POST", "/update/prompt", data=body, headers=JSON)


def update(body: Any) -> Send:
    """POST /update/prompt with a JSON body."""
    return request("POST", "/update/prompt", data=json.dumps(body), headers=JSON)


def load_image(value: str) -> Send:
    """Point the LoadImage node of http_text (node 1) at `value` through /update/prompt."""
    return update({"node_id": "1", "input": "image", "value": value})


TOKENED = HttpOptions(token=TOKEN)
SMALL = HttpOptions(max_body_bytes=4096, max_image_bytes=2048)
CASES = [
    Case("update: not JSON", update_raw(b'{"te'), 400, "malformed_json"),
    Case("update: a JSON list", update([]), 400, "bad_request"),
    Case("update: an empty object", update({}), 400, "bad_request"),
    Case("update: unknown node", update({"node_id": "99", "text": "x"}), 404, "unknown_node"),
    Case("update: node input without value", update({"node_id": "2"}), 400, "bad_request"),
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
    Case(
        "upload: over the image limit", upload(png(64, 64) + bytes(4000)), 413, None, "demo", SMALL
    ),
    Case("upload: no such input", upload(png(), query="?input=1"), 422, "no_image_input", "demo"),
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
    Case(
        "jobs: output index of 5000 digits",
        request("GET", "/jobs/x/outputs/" + "7" * 5000),
        404,
        "unknown_job",
    ),
    Case("interrupt: unknown job", request("POST", "/interrupt/nope"), 404, "unknown_job"),
    Case("route: unknown path", request("GET", "/nowhere"), 404, "not_found"),
    Case("route: wrong method", request("DELETE", "/queue"), 405, "method_not_allowed"),
    Case(
        "route: PUT on update", request("PUT", "/update/prompt", json={}), 405, "method_not_allowed"
    ),
    Case("auth: upload without token", upload(png()), 401, "unauthorized", "demo", TOKENED),
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
        upload(png(), headers={"Origin": "https://evil.example"}),
        403,
        "forbidden",
        "demo",
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
        "upload: bad multipart boundary", multipart(b"--x\r\nbroken"), 400, "malformed_form", "demo"
    ),
    Case(
        "upload: multipart cut short",
        multipart(
            b'--x\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\nabc'
        ),
        400,
        "malformed_form",
        "demo",
    ),
    Case(
        "upload: multipart without a boundary",
        multipart(b"--x\r\n\r\n--x--\r\n", "multipart/form-data"),
        400,
        None,
        "demo",
    ),
    Case(
        "upload: multipart part without headers",
        multipart(b"--x\r\n\r\nabc\r\n--x--\r\n"),
        400,
        None,
        "demo",
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
]
# Requests a browser acting for another site, or a foreign host name, sends (CSRF, DNS
# rebinding): 403 forbidden, whatever the route.
CASES += [
    Case(name, request(method, path, headers=headers), 403, "forbidden")
    for name, method, path, headers in [
        ("browser: Origin null", "POST", "/queue", {"Origin": "null"}),
        ("browser: GET /queue cross-site", "GET", "/queue", {"Sec-Fetch-Site": "cross-site"}),
        ("browser: POST /queue same-site", "POST", "/queue", {"Sec-Fetch-Site": "same-site"}),
        (
            "browser: GET /queue from a foreign page",
            "GET",
            "/queue",
            {"Origin": "http://evil.example"},
        ),
        ("host: rebinding name", "GET", "/workflow", {"Host": "rebind.evil.example:8189"}),
        ("host: rebinding name on queue", "POST", "/queue", {"Host": "rebind.evil.example"}),
        ("host: port not a number", "GET", "/jobs/x", {"Host": "127.0.0.1:http"}),
    ]
]
# A server with a token refuses a request without that very token as a bearer header: 401.
CASES += [
    Case(name, request(method, path, **kwargs), 401, "unauthorized", options=TOKENED)
    for name, method, path, kwargs in [
        ("auth: no token", "POST", "/queue", {}),
        ("auth: wrong token", "POST", "/queue", {"headers": {"Authorization": "Bearer nope"}}),
        (
            "auth: not a bearer token",
            "POST",
            "/queue",
            {"headers": {"Authorization": f"Basic {TOKEN}"}},
        ),
        ("auth: token in the query", "POST", f"/queue?token={TOKEN}", {}),
        ("auth: events without token", "GET", "/events", {}),
    ]
]
# Values the workflow has no place for, or outside its ranges (ComfyUI would take some of them
# but should never get them: built-in ranges, image names): 422 invalid_input.
CASES += [
    Case(f"update: {name}", send, 422, "invalid_input", workflow)
    for name, send, workflow in [
        ("node without that input", update({"node_id": "3", "text": "x"}), "http_text"),
        ("seed as text", update({"seed": "five"}), "http_text"),
        ("steps over the range", update({"steps": 9999}), "http_text"),
        ("negative steps", update({"steps": -1}), "http_text"),
        ("steps as a float", update({"steps": 2.5}), "http_text"),
        ("steps as a bool", update({"steps": True}), "http_text"),
        ("unknown key", update({"colour": "red"}), "http_text"),
        ("image name by hand", update({"image": "x.png"}), "http_text"),
        ("text as a number", update({"text": 5}), "http_text"),
        ("cfg the workflow lacks", update({"cfg": 7}), "http_text"),
        ("steps 10**300", update({"steps": 10**300}), "http_text"),
        ("width not a multiple of 8", update({"width": 100}), "slow"),
        ("width 10**6", update({"width": 10**6}), "slow"),
        ("height 0", update({"height": 0}), "slow"),
        (
            "LoadImage at another user's output",
            load_image("ComfyUI_00001_.png [output]"),
            "http_text",
        ),
        ("LoadImage at a temp file", load_image("x.png [temp]"), "http_text"),
        ("LoadImage up a folder", load_image("../secrets.png"), "http_text"),
        ("LoadImage with a backslash", load_image("a\\b.png"), "http_text"),
    ]
]
# The upload's `input` (which image input of the workflow) must be a plain number: 400.
CASES += [
    Case(f"upload: {name}", send, 400, "bad_request", "demo")
    for name, send in [
        ("input not a number", upload(png(), input="first")),
        ("input a superscript digit", upload(png(), query="?input=%C2%B2")),
        ("input 5000 digits", upload(png(), query="?input=" + "9" * 5000)),
        ("input negative", upload(png(), query="?input=-1")),
    ]
]
# Files the input check decodes and refuses: 422 invalid_image.
CASES += [
    Case(f"upload: {name}", upload(data), 422, "invalid_image", "demo")
    for name, data in [
        ("text named .png", not_an_image()),
        ("empty file", b""),
        ("truncated PNG", truncated_png()),
        ("huge canvas PNG", huge_canvas_png()),
        ("EPS named .png", eps()),
        *((f"{kind} named .png", in_format(kind)) for kind in REFUSED_FORMATS),
        ("multi-page TIFF", multipage_tiff()),
    ]
]


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
