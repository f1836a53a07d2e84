"""Property tests of `comfycord serve`, generated from its own OpenAPI document: never a 500.

For every operation the document lists, hypothesis draws path and query parameters, bodies and
headers from the operation's schemas, and mixes in values outside them (wrong types, junk bytes,
foreign origins). Every answer must be a documented status; every error a JSON error object.
The server and the fake ComfyUI run on their own thread and loop; requests are plain blocking
http.client calls, so hypothesis drives a synchronous test.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import http.client
import json
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.http.openapi import spec
from bot.http.serve import HttpOptions
from tests.bad_input import png
from tests.fakes.comfy import FakeComfy
from tests.http_harness import serve_middleware

TOKEN = "property-token"
DOCUMENT = spec(has_token=True)
SCHEMAS = DOCUMENT["components"]["schemas"]
OPERATIONS = [
    (path, method.upper(), operation)
    for path, item in DOCUMENT["paths"].items()
    for method, operation in item.items()
]
# Statuses any route may answer besides its documented ones: aiohttp's router (a path parameter
# that matches no route, a method a route lacks) and its parser (a header it cannot read).
ROUTER_STATUSES = {404, 405}


class ServerThread:
    """FakeComfy and the middleware (with a token) on a loop of their own."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="http-properties")
        self._stop: asyncio.Event | None = None
        self._running: concurrent.futures.Future[None] | None = None
        self.port = 0
        self.errors: list[BaseException] = []

    def __enter__(self) -> ServerThread:
        self._thread.start()
        started = threading.Event()
        self._running = asyncio.run_coroutine_threadsafe(self._serve(started), self._loop)
        if not started.wait(20):
            raise RuntimeError("the middleware did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        if self._running is not None:
            self._running.result(20)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    async def _serve(self, started: threading.Event) -> None:
        self._stop = asyncio.Event()
        options = HttpOptions(token=TOKEN, max_body_bytes=64 * 1024, max_image_bytes=32 * 1024)
        async with (
            FakeComfy(step_delay=0.0) as fake,
            serve_middleware(fake.url, "http_text", options, max_per_user=4) as harness,
        ):
            self.port = harness.server.port or 0
            started.set()
            await self._stop.wait()
            await harness.http.post("/interrupt", headers={"Authorization": f"Bearer {TOKEN}"})
        self.errors = list(fake.errors)


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    with ServerThread() as running:
        yield running
    assert not running.errors, running.errors


def json_values() -> st.SearchStrategy[Any]:
    """Return any JSON value, nested a little."""
    scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
        max_leaves=12,
    )


def from_schema(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Return values of a (small subset of) JSON Schema, as the document uses it."""
    if "$ref" in schema:
        return from_schema(SCHEMAS[schema["$ref"].rsplit("/", 1)[-1]])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kinds = schema.get("type")
    if isinstance(kinds, list):
        return st.one_of([from_schema({**schema, "type": kind}) for kind in kinds])
    match kinds:
        case "object":
            properties = schema.get("properties", {})
            return st.fixed_dictionaries(
                {key: from_schema(properties[key]) for key in schema.get("required", [])},
                optional={
                    key: from_schema(value)
                    for key, value in properties.items()
                    if key not in schema.get("required", [])
                },
            )
        case "array":
            return st.lists(from_schema(schema.get("items", {})), max_size=4)
        case "string":
            return st.text(max_size=40)
        case "integer":
            return st.integers(min_value=schema.get("minimum"))
        case "number":
            return st.floats(allow_nan=False, allow_infinity=False)
        case "boolean":
            return st.booleans()
        case "null":
            return st.none()
    return json_values()


@dataclass(frozen=True)
class Drawn:
    """One request to send."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes


def _path_value(parameter: dict[str, Any]) -> st.SearchStrategy[str]:
    fitting = from_schema(parameter["schema"]).map(str)
    return (fitting | st.text(min_size=1, max_size=30)).map(lambda v: urllib.parse.quote(v, ""))


def _target(path: str, operation: dict[str, Any], data: st.DataObject) -> str:
    query = {}
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "path":
            path = path.replace("{" + parameter["name"] + "}", data.draw(_path_value(parameter)))
        elif data.draw(st.booleans()):
            fitting = from_schema(parameter["schema"]).map(str)
            query[parameter["name"]] = data.draw(fitting | st.text(max_size=20))
    return path + (f"?{urllib.parse.urlencode(query)}" if query else "")


def _body(operation: dict[str, Any], data: st.DataObject) -> tuple[bytes, str | None]:
    content = operation.get("requestBody", {}).get("content", {})
    if "application/json" in content:
        fitting = from_schema(content["application/json"]["schema"])
        value = data.draw(fitting | json_values())
        raw = data.draw(st.sampled_from([True, True, True, False]))
        body = json.dumps(value).encode() if raw else data.draw(st.binary(max_size=64))
        kind = data.draw(st.sampled_from(["application/json"] * 4 + ["text/plain", None]))
        return body, kind
    if "multipart/form-data" in content:
        image = data.draw(st.sampled_from([png(), b""]) | st.binary(max_size=256))
        field = data.draw(st.sampled_from(["image", "image", "picture"]))
        extra = data.draw(st.text(max_size=10))
        # Part headers as they should be, or a line that is no header at all.
        disposition = data.draw(
            st.just(b'Content-Disposition: form-data; name="input"')
            | st.binary(max_size=20).filter(lambda line: b"\r" not in line)
        )
        body = (
            b"--b0undary\r\n"
            + disposition
            + b"\r\n\r\n"
            + extra.encode()
            + b'\r\n--b0undary\r\nContent-Disposition: form-data; name="'
            + field.encode()
            + b'"; filename="x.png"\r\nContent-Type: image/png\r\n\r\n'
            + image
            + b"\r\n--b0undary--\r\n"
        )
        cut = data.draw(st.none() | st.integers(min_value=0, max_value=len(body)))
        return body[:cut], "multipart/form-data; boundary=b0undary"
    return b"", None


def _headers(data: st.DataObject, content_type: str | None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    latin1 = st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=30)
    extras = st.fixed_dictionaries(
        {},
        optional={
            "Authorization": latin1,
            "Origin": st.sampled_from(["https://evil.example", "null"]) | latin1,
            "Sec-Fetch-Site": st.sampled_from(["cross-site", "same-site", "none"]) | latin1,
            "Accept": latin1,
        },
    )
    return headers | data.draw(extras)


def send(port: int, drawn: Drawn) -> tuple[int, str, bytes]:
    """Send a request; return its status, content type and (for non-streams) its body."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.putrequest(drawn.method, drawn.target, skip_accept_encoding=True)
        for name, value in drawn.headers.items():
            connection.putheader(name, value.encode("latin-1"))
        connection.putheader("Content-Length", str(len(drawn.body)))
        connection.endheaders(drawn.body)
        answer = connection.getresponse()
        kind = answer.getheader("Content-Type", "").split(";")[0]
        body = b"" if kind == "text/event-stream" else answer.read()
        return answer.status, kind, body
    finally:
        connection.close()


@pytest.mark.filterwarnings("ignore::aiohttp.multipart.BadContentDispositionHeader")
@pytest.mark.parametrize(
    ("path", "method", "operation"), OPERATIONS, ids=[f"{m} {p}" for p, m, _ in OPERATIONS]
)
@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_generated_requests_never_get_a_500(
    server: ServerThread, path: str, method: str, operation: dict[str, Any], data: st.DataObject
) -> None:
    target = _target(path, operation, data)
    body, content_type = _body(operation, data)
    drawn = Drawn(method, target, _headers(data, content_type), body)

    status, kind, answer = send(server.port, drawn)

    assert status < 500 or (path == "/health" and status == 503), (status, answer, drawn)
    documented = {int(code) for code in operation["responses"]}
    assert status in documented | ROUTER_STATUSES, (status, answer, drawn)
    if status >= 400:
        assert kind == "application/json", (status, kind, answer, drawn)
        error = json.loads(answer)["error"]
        assert error["code"]
        assert error["message"]
