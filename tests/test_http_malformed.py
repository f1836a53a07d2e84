"""Malformed requests get a 4xx JSON error and no logged traceback; event streams are capped."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from bot.http.routes import STATE
from bot.http.serve import HttpOptions
from tests.fakes.comfy import FakeComfy
from tests.http_harness import Harness, image_form, json_error, png, serve_middleware


@pytest.fixture
def no_tracebacks(caplog: pytest.LogCaptureFixture) -> Any:
    caplog.set_level(logging.DEBUG)
    yield
    problems = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not problems, [r.getMessage() for r in problems]


async def raw_request(port: int, head: bytes, *, local: str = "127.0.0.1") -> tuple[int, Any]:
    """Send bytes no HTTP client library would; return the status and the JSON body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(local, 0))
    try:
        writer.write(head)
        await writer.drain()
        async with asyncio.timeout(5):
            answer = await reader.read()
    finally:
        writer.close()
    header, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = header.decode("latin-1").split("\r\n")
    content_type = next(
        v for k, _, v in (x.partition(": ") for x in lines) if k.lower() == "content-type"
    )
    assert content_type.startswith("application/json"), answer
    return int(status_line.split()[1]), json.loads(body)


@pytest.mark.usefixtures("no_tracebacks")
@pytest.mark.parametrize("raw", ["²", "\u0661", "9" * 5000, "-1", "0x1", " "])
async def test_an_odd_input_number_is_400(fake_comfy: FakeComfy, raw: str) -> None:
    async with serve_middleware(fake_comfy.url) as h:
        answer = await h.http.post("/upload/image", params={"input": raw}, data=image_form(png()))
        assert "must be a number such as 0" in await json_error(answer, 400, "bad_request")
    assert ("POST", "/upload/image") not in fake_comfy.requests


@pytest.mark.usefixtures("no_tracebacks")
@pytest.mark.parametrize("depth", [33, 1000, 100_000])
async def test_deeply_nested_json_is_400(fake_comfy: FakeComfy, depth: int) -> None:
    body = b'{"node_id": "2", "text": "x", "extra": ' + b"[" * depth + b"]" * depth + b"}"
    async with serve_middleware(fake_comfy.url) as h:
        answer = await h.http.post(
            "/update/prompt", data=body, headers={"Content-Type": "application/json"}
        )
        assert "nested too deeply" in await json_error(answer, 400, "malformed_json")


@pytest.mark.usefixtures("no_tracebacks")
async def test_a_huge_output_number_is_a_4xx(fake_comfy: FakeComfy) -> None:
    async with serve_middleware(fake_comfy.url, "slow") as h, asyncio.timeout(10):
        job = (await (await h.http.post("/queue")).json())["job_id"]
        await h.jobs.get(job).result()
        answer = await h.http.get(f"/jobs/{job}/outputs/{'7' * 5000}")
        await json_error(answer, 400, "bad_request")
        missing = await h.http.get(f"/jobs/{job}/outputs/12")
        await json_error(missing, 404, "unknown_output")


@pytest.mark.usefixtures("no_tracebacks")
async def test_an_authorization_header_that_is_not_utf8_is_401(fake_comfy: FakeComfy) -> None:
    options = HttpOptions(token="right-token-" * 3)
    async with serve_middleware(fake_comfy.url, options=options) as h:
        status, body = await raw_request(
            h.server.port,
            b"GET /workflow HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \xff\xfe\r\n"
            b"Connection: close\r\n\r\n",
        )
    assert status == 401
    assert body["error"]["code"] == "unauthorized"


@pytest.mark.usefixtures("no_tracebacks")
@pytest.mark.parametrize(
    "head",
    [
        b"GET /workflow HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n",
        b"GET /workflow HTTP/1.1\r\nHost: 127.0.0.1\r\nBroken header line\r\n\r\n",
        b"GET /" + b"p" * 9000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        b"GET /workflow HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -4\r\n\r\n",
    ],
)
async def test_requests_aiohttp_cannot_parse_get_a_json_error(
    fake_comfy: FakeComfy, head: bytes
) -> None:
    async with serve_middleware(fake_comfy.url) as h:
        status, body = await raw_request(h.server.port, head)
    assert 400 <= status < 500
    assert body["error"]["code"] == "malformed_request"
    assert body["error"]["message"].startswith("The request could not be parsed")


# -- event streams ----------------------------------------------------------------------------


@asynccontextmanager
async def stream(h: Harness, local: str = "127.0.0.1") -> AsyncIterator[tuple[int, bytes]]:
    """Open GET /events from the address `local`; yield its status and first bytes."""
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", h.server.port, local_addr=(local, 0)
    )
    try:
        writer.write(b"GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        async with asyncio.timeout(5):
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split()[1])
            first = await reader.readuntil(b"\n\n") if status == 200 else await reader.read(2000)
        yield status, first
    finally:
        writer.close()
        await writer.wait_closed()


async def _listeners_drop_to(h: Harness, count: int) -> None:
    board = h.server.app[STATE].board
    async with asyncio.timeout(5):
        while f"listeners={count})" not in repr(board):
            await asyncio.sleep(0.01)


async def test_event_streams_are_capped_per_client(fake_comfy: FakeComfy) -> None:
    options = HttpOptions(max_event_streams=8)  # two per client address
    async with serve_middleware(fake_comfy.url, options=options) as h:
        async with stream(h) as one, stream(h) as two, stream(h) as three:
            assert (one[0], two[0]) == (200, 200)
            assert three[0] == 429
            assert b"too_many_streams" in three[1]
            async with stream(h, "127.0.0.2") as elsewhere:
                assert elsewhere[0] == 200
        await _listeners_drop_to(h, 0)
        async with stream(h) as again:
            assert again[0] == 200


async def test_event_streams_are_capped_in_total(fake_comfy: FakeComfy) -> None:
    options = HttpOptions(max_event_streams=4)  # one per client address
    async with (
        serve_middleware(fake_comfy.url, options=options) as h,
        stream(h, "127.0.0.1") as a,
        stream(h, "127.0.0.2") as b,
        stream(h, "127.0.0.3") as c,
        stream(h, "127.0.0.4") as d,
        stream(h, "127.0.0.5") as e,
    ):
        assert [s[0] for s in (a, b, c, d)] == [200] * 4
        assert e[0] == 429
        assert b"HTTP_MAX_EVENT_STREAMS" in e[1]
