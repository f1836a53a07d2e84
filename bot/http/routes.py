"""The HTTP middleware's routes: thin handlers over the ServerState, JSON in and out."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from bot.http.errors import BadRequest, NotReady, UnknownOutput, UnsupportedMediaType
from bot.http.openapi import spec
from bot.http.service import ServerState
from bot.images import ImageFile, check_input_image
from bot.ops.health import metrics_response
from bot.ops.metrics import Metrics

log = logging.getLogger(__name__)

STATE = web.AppKey("state", ServerState)
METRICS = web.AppKey("metrics", Metrics)
MAX_JSON_DEPTH = 32
MAX_INDEX_DIGITS = 6
OPEN_PATHS = frozenset({"/health"})
_SAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _state(request: web.Request) -> ServerState:
    return request.app[STATE]


async def _read_json(request: web.Request) -> Any:
    if request.content_type != "application/json":
        raise UnsupportedMediaType(
            f"Send the body as JSON with 'Content-Type: application/json', not"
            f" {request.content_type!r}."
        )
    body = await request.read()
    try:
        value = json.loads(body)
    except RecursionError:
        value = None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"The body is not valid JSON ({exc}).", "malformed_json") from exc
    if value is None or _depth(value) > MAX_JSON_DEPTH:
        raise BadRequest(
            f"The JSON body is nested too deeply (at most {MAX_JSON_DEPTH} levels).",
            "malformed_json",
        )
    return value


def _depth(value: Any) -> int:
    """Return how deeply containers nest in a JSON value (without recursion)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth <= MAX_JSON_DEPTH and isinstance(item, dict | list):
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return deepest


def _number(raw: object, what: str) -> int:
    """Return a small whole number written in ASCII digits, else refuse it."""
    text = raw.strip() if isinstance(raw, str) else ""
    if text.isascii() and text.isdigit() and len(text) <= MAX_INDEX_DIGITS:
        return int(text)
    shown = raw if not isinstance(raw, str) else raw[:40]
    raise BadRequest(f"{what} must be a number such as 0, not {shown!r}.")


def _index(raw: object) -> int:
    return _number(raw, "input (an image input number)")


async def upload_image(request: web.Request) -> web.Response:
    """POST /upload/image: set the image of one image input (multipart field `image`)."""
    state = _state(request)
    try:
        form = await request.post()
    except (ValueError, HttpProcessingError) as exc:  # a multipart body that does not parse
        raise BadRequest(f"The form could not be read ({exc}).", "malformed_form") from exc
    field = form.get("image")
    if not isinstance(field, web.FileField):
        raise BadRequest("Send multipart/form-data with the image in a file field named 'image'.")
    index = _index(request.query.get("input", form.get("input", "0")))
    image = await asyncio.to_thread(
        _checked, field, state.options.max_image_bytes, field.filename or "image.png"
    )
    state.jobs.placement.check_images(state.patch.workflow, (image,))  # before it is kept
    patch = state.update(lambda current: current.with_image(index, image))
    point = patch.workflow.points["image"][index]
    body: dict[str, Any] = {
        "input": index,
        "node_id": point.node_id,
        "filename": image.filename,
        "size": len(image.data),
        "content_type": image.content_type,
    }
    if not state.options.auto_execute:
        return web.json_response(body)
    body["job"] = state.queue()
    return web.json_response(body, status=202, headers={"Location": body["job"]["url"]})


def _checked(field: web.FileField, max_bytes: int, filename: str) -> ImageFile:
    return check_input_image(field.file.read(), filename, max_bytes=max_bytes)


async def update_prompt(request: web.Request) -> web.Response:
    """POST /update/prompt: set prompt text, workflow values or one node's input."""
    body = await _read_json(request)
    patch = _state(request).update(lambda current: current.with_changes(body))
    overrides = [
        {"node_id": node_id, "input": input_name, "value": value}
        for (node_id, input_name), value in patch.overrides.items()
    ]
    return web.json_response({"values": dict(patch.values), "overrides": overrides})


async def queue(request: web.Request) -> web.Response:
    """GET or POST /queue: queue the workflow as set now."""
    payload = _state(request).queue()
    return web.json_response(payload, status=202, headers={"Location": payload["url"]})


async def interrupt_all(request: web.Request) -> web.Response:
    """POST /interrupt: cancel every pending or running job of this server."""
    state = _state(request)
    active = [job for job in state.board.jobs() if not job.is_done]
    return web.json_response({"jobs": await state.interrupt(active)})


async def interrupt_one(request: web.Request) -> web.Response:
    """POST /interrupt/{job_id}: cancel one job of this server."""
    state = _state(request)
    job = state.job(request.match_info["job_id"])
    return web.json_response({"jobs": await state.interrupt([job])})


async def get_job(request: web.Request) -> web.Response:
    """GET /jobs/{job_id}: state, position, progress, error and outputs."""
    state = _state(request)
    return web.json_response(await state.board.describe(state.job(request.match_info["job_id"])))


async def get_output(request: web.Request) -> web.Response:
    """GET /jobs/{job_id}/outputs/{n}: the bytes of one output."""
    job = _state(request).job(request.match_info["job_id"])
    if not job.is_done:
        raise NotReady(f"Job {job.id} is {job.state}; its outputs exist once it is done.")
    result = await job.result()
    if result.is_released:
        raise UnknownOutput(
            f"Job {job.id}'s outputs are no longer kept (only the newest jobs keep theirs)."
        )
    outputs = result.outputs
    index = _number(request.match_info["n"], "The output number")
    if index >= len(outputs):
        raise UnknownOutput(f"Job {job.id} has {len(outputs)} output(s); there is no {index}.")
    output = outputs[index]
    name = _SAFE_FILENAME.sub("_", output.filename.rsplit("/", 1)[-1]) or "output"
    return web.Response(
        body=output.data,
        content_type=output.content_type,
        headers={"Content-Disposition": f'inline; filename="{name}"'},
    )


async def events(request: web.Request) -> web.StreamResponse:
    """GET /events: Server-Sent Events, one `event: job` per change of this server's jobs."""
    state = _state(request)
    mailbox = state.board.listen(request.remote or "")
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    try:
        await response.prepare(request)
        await response.write(b": connected\n\n")
        while True:
            try:
                async with asyncio.timeout(state.options.heartbeat):
                    batch = await mailbox.next()
            except TimeoutError:
                await response.write(b": keep-alive\n\n")
                continue
            if batch is None:
                break
            for payload in batch:
                data = json.dumps(payload, separators=(",", ":"))
                await response.write(f"event: job\ndata: {data}\n\n".encode())
    except ConnectionResetError:
        log.debug("SSE client %s went away", request.remote)
    finally:
        mailbox.close()
    return response


async def get_workflow(request: web.Request) -> web.Response:
    """GET /workflow: the graph that would be queued now, with the values set."""
    return web.json_response(_state(request).patch.describe())


async def health(request: web.Request) -> web.Response:
    """GET /health: is ComfyUI connected, and how many jobs are where."""
    body = _state(request).health()
    return web.json_response(body, status=200 if body["status"] == "ok" else 503)


async def metrics(request: web.Request) -> web.Response:
    """GET /metrics: Prometheus metrics of this server's process."""
    return metrics_response(request.app[METRICS])


async def openapi(request: web.Request) -> web.Response:
    """GET /openapi.json: the OpenAPI 3.1 description of these routes."""
    return web.json_response(spec(has_token=bool(_state(request).options.token)))


ROUTES: tuple[tuple[str, str, Handler], ...] = (
    ("POST", "/upload/image", upload_image),
    ("POST", "/update/prompt", update_prompt),
    ("GET", "/queue", queue),
    ("POST", "/queue", queue),
    ("POST", "/interrupt", interrupt_all),
    ("POST", "/interrupt/{job_id}", interrupt_one),
    ("GET", "/jobs/{job_id}", get_job),
    ("GET", r"/jobs/{job_id}/outputs/{n:[0-9]+}", get_output),
    ("GET", "/events", events),
    ("GET", "/workflow", get_workflow),
    ("GET", "/health", health),
    ("GET", "/metrics", metrics),
    ("GET", "/openapi.json", openapi),
)
"""Every route: (method, path, handler); `bot.http.openapi` documents each of them."""
