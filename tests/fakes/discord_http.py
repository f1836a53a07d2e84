"""Request recording, waiting and fault injection for the fake Discord's HTTP side."""

from __future__ import annotations

import asyncio
import fnmatch
import json
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import BodyPartReader, web

from tests.fakes.discord_payloads import error, json_response

log = logging.getLogger(__name__)

API_PREFIX = "/api/v10"
_FILE_PART = re.compile(r"files\[(\d+)\]")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(eq=False)
class RecordedCall:
    """One HTTP request the fake answered (the gateway is not recorded here).

    ``path`` is relative to ``/api/v10`` for API calls (``/webhooks/…``) and absolute for
    attachment downloads (``/attachments/…``). ``json`` is the JSON body, or ``payload_json`` of a
    multipart body. ``files`` holds ``(filename, bytes, content_type)`` of the ``files[n]`` parts
    in index order, with the content type the client sent.
    """

    method: str
    path: str
    query: dict[str, str]
    json: Any
    files: list[tuple[str, bytes, str]]
    time: float
    headers: dict[str, str] = field(repr=False, default_factory=dict)
    status: int = 0
    response: Any = field(repr=False, default=None)
    file_indices: list[int] = field(repr=False, default_factory=list)


CALL = web.RequestKey("call", RecordedCall)


@dataclass(eq=False)
class Fault:
    """A scripted answer that replaces the next ``count`` matching requests."""

    method: str
    path_pattern: str
    status: int
    body: dict[str, Any]
    count: int
    retry_after: float | None = None

    def matches(self, call: RecordedCall) -> bool:
        """Tell whether the fault applies to ``call``."""
        return (
            self.count > 0
            and call.method == self.method.upper()
            and fnmatch.fnmatchcase(call.path, self.path_pattern)
        )


def rate_limit_response(retry_after: float, bucket: str, *, scope: str = "user") -> web.Response:
    """Answer a 429 exactly as Discord does, so discord.py retries it (``Via`` is required)."""
    headers = {
        "X-RateLimit-Limit": "5",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": f"{time.time() + retry_after:.3f}",
        "X-RateLimit-Reset-After": f"{retry_after:.3f}",
        "X-RateLimit-Bucket": bucket,
        "X-RateLimit-Scope": scope,
        "Retry-After": str(math.ceil(retry_after)),
        "Via": "1.1 google",
    }
    body = {"message": "You are being rate limited.", "retry_after": retry_after, "global": False}
    return json_response(body, 429, headers)


class Recorder:
    """Keep every call and wake waiters on each one, without polling.

    ``observers`` are called with each call as it is recorded; with ``is_keeping`` False the
    calls are only observed, not kept (a long soak would otherwise hold every upload).
    """

    def __init__(self) -> None:
        self.calls: list[RecordedCall] = []
        self.observers: list[Callable[[RecordedCall], None]] = []
        self.is_keeping = True
        self._waiters: list[
            tuple[Callable[[RecordedCall], bool], asyncio.Future[RecordedCall]]
        ] = []

    def record(self, call: RecordedCall) -> None:
        """Append ``call``, tell the observers, resolve the waiters whose predicate it satisfies."""
        if self.is_keeping:
            self.calls.append(call)
        for observer in self.observers:
            observer(call)
        pending = []
        for predicate, future in self._waiters:
            if future.done():
                continue
            if predicate(call):
                future.set_result(call)
            else:
                pending.append((predicate, future))
        self._waiters = pending

    async def wait_for(
        self, predicate: Callable[[RecordedCall], bool], timeout: float, since: int
    ) -> RecordedCall:
        """Return the first call from index ``since`` on that satisfies ``predicate``."""
        for call in self.calls[since:]:
            if predicate(call):
                return call
        future: asyncio.Future[RecordedCall] = asyncio.get_running_loop().create_future()
        self._waiters.append((predicate, future))
        try:
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError:
            seen = "\n  ".join(f"{c.method} {c.path} -> {c.status}" for c in self.calls[since:])
            raise TimeoutError(f"no matching call within {timeout}s; calls:\n  {seen}") from None
        finally:
            future.cancel()


async def parse_call(request: web.Request) -> RecordedCall:
    """Read a request (JSON or multipart) into a RecordedCall."""
    path = request.path
    if path.startswith(API_PREFIX):
        path = path[len(API_PREFIX) :]
    call = RecordedCall(
        method=request.method,
        path=path,
        query=dict(request.query),
        json=None,
        files=[],
        time=time.monotonic(),
        headers=dict(request.headers),
    )
    if request.content_type.startswith("multipart/"):
        await _read_multipart(request, call)
    elif request.can_read_body:
        raw = await request.read()
        if raw:
            call.json = json.loads(raw)
    return call


async def _read_multipart(request: web.Request, call: RecordedCall) -> None:
    reader = await request.multipart()
    files: list[tuple[int, tuple[str, bytes, str]]] = []
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            continue
        data = await part.read()
        name = part.name or ""
        if name == "payload_json":
            call.json = json.loads(data)
        elif match := _FILE_PART.fullmatch(name):
            content_type = part.headers.get("Content-Type", "application/octet-stream")
            files.append((int(match[1]), (part.filename or name, bytes(data), content_type)))
    files.sort(key=lambda item: item[0])
    call.file_indices = [index for index, _ in files]
    call.files = [file for _, file in files]


def response_body(response: web.StreamResponse) -> Any:
    """Decode the JSON body of an answer, for the record."""
    if isinstance(response, web.Response) and response.content_type == "application/json":
        body = response.body
        if isinstance(body, bytes | bytearray):
            return json.loads(body)
    return None


def internal_error(exc: BaseException) -> web.Response:
    """Answer a bug in the fake with a fast-failing 400 (a 500 would be retried for seconds)."""
    log.error("fake Discord handler failed", exc_info=exc)
    return error(400, 0, f"fake Discord internal error: {exc!r}")
