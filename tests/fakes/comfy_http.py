"""The fake ComfyUI's HTTP routes (each also under /api), answering as its ComfyUI version does."""

from __future__ import annotations

import hashlib
import json
import mimetypes
import posixpath
import time
import uuid
from email.utils import formatdate
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.fakes.comfy_catalog import MODEL_FOLDERS
from tests.fakes.comfy_images import convert_for_view
from tests.fakes.comfy_jobs import JobsApi, is_canonical
from tests.fakes.comfy_queue import QueueItem
from tests.fakes.comfy_validate import validate_prompt
from tests.fakes.comfy_versions import INVALID_PROMPT_ID, SYSTEM_STATS

if TYPE_CHECKING:
    from tests.fakes.comfy import FakeComfy


def _no_prompt() -> web.Response:
    error = {
        "type": "no_prompt",
        "message": "No prompt provided",
        "details": "No prompt provided",
        "extra_info": {},
    }
    return web.json_response({"error": error, "node_errors": {}}, status=400)


class Api:
    """Route handlers over a FakeComfy's current state (its queue, files, hub, executor)."""

    def __init__(self, server: FakeComfy) -> None:
        self.server = server

    def routes(self) -> list[web.RouteDef]:
        """Return every route, once plain and once under /api."""
        table = [
            ("GET", "/ws", self.server.handle_ws),
            ("POST", "/prompt", self.post_prompt),
            ("GET", "/prompt", self.get_prompt),
            ("GET", "/queue", self.get_queue),
            ("POST", "/queue", self.post_queue),
            ("POST", "/interrupt", self.post_interrupt),
            ("GET", "/history", self.get_history),
            ("POST", "/history", self.post_history),
            ("GET", "/history/{prompt_id}", self.get_history_item),
            ("GET", "/view", self.view),
            ("POST", "/upload/image", self.upload_image),
            ("GET", "/system_stats", self.system_stats),
            ("GET", "/object_info", self.object_info),
            ("GET", "/object_info/{node_class}", self.object_info_class),
            ("POST", "/free", self.free),
            ("GET", "/models", self.models),
            ("GET", "/models/{folder}", self.model_files),
            ("GET", "/embeddings", self.embeddings),
            ("GET", "/extensions", self.extensions),
        ]
        if self.server.has_features:
            table.append(("GET", "/features", self.features))
        if self.server.rules.has_jobs_api:
            table += JobsApi(self.server).routes()
        return [
            web.route(method, prefix + path, handler)
            for method, path, handler in table
            for prefix in ("", "/api")
        ]

    async def post_prompt(self, request: web.Request) -> web.Response:
        """Validate and queue a prompt (the number is taken before validation)."""
        server = self.server
        body = await request.json()
        if "number" in body:
            number: float = float(body["number"])
        else:
            number = server.queue.take_number()
            if body.get("front"):
                number = -number
        if "prompt" not in body:
            return _no_prompt()
        prompt = body["prompt"]
        rules = server.rules
        chosen = body.get("prompt_id")
        if chosen is not None and rules.requires_uuid_ids and not is_canonical(chosen):
            return web.json_response(INVALID_PROMPT_ID, status=400)
        prompt_id = str(chosen) if chosen is not None else str(uuid.uuid4())
        targets = body.get("partial_execution_targets")
        result = validate_prompt(prompt, server.catalog, server.files.exists_annotated, targets)
        extra_data = body.get("extra_data", {})
        if "client_id" in body:
            extra_data["client_id"] = body["client_id"]
        if result.error is not None:
            return web.json_response(
                {"error": result.error, "node_errors": result.node_errors}, status=400
            )
        if rules.has_jobs_api:
            extra_data["create_time"] = int(time.time() * 1000)
        server.queue.put(QueueItem(number, prompt_id, prompt, extra_data, result.outputs))
        answer = {"prompt_id": prompt_id, "number": number, "node_errors": result.node_errors}
        return web.json_response(answer)

    async def get_prompt(self, request: web.Request) -> web.Response:
        """Answer `{"exec_info": {"queue_remaining": N}}`."""
        return web.json_response(self.server.queue.info())

    async def get_queue(self, request: web.Request) -> web.Response:
        """List the running item and the pending ones (in heap order, unsorted)."""
        queue = self.server.queue
        running = [queue.running.as_list()] if queue.running else []
        pending = [entry[2].as_list() for entry in queue.heap]
        return web.json_response({"queue_running": running, "queue_pending": pending})

    async def post_queue(self, request: web.Request) -> web.Response:
        """Clear or delete pending prompts."""
        body = await request.json()
        if body.get("clear"):
            self.server.queue.wipe()
        for prompt_id in body.get("delete", []):
            self.server.queue.delete(prompt_id)
        return web.Response(status=200)

    async def post_interrupt(self, request: web.Request) -> web.Response:
        """Interrupt globally, or only the running prompt named by `prompt_id`."""
        try:
            body: Any = await request.json()
        except json.JSONDecodeError:
            body = None
        self.server.interrupts.append(body)
        prompt_id = (body or {}).get("prompt_id")
        running = self.server.queue.running
        if not prompt_id or (running is not None and running.prompt_id == prompt_id):
            self.server.executor.interrupted = True
        return web.Response(status=200)

    async def get_history(self, request: web.Request) -> web.Response:
        """Page through the history (`max_items`, `offset`)."""
        max_items = request.query.get("max_items")
        offset = int(request.query.get("offset", -1))
        limit = int(max_items) if max_items is not None else None
        return web.json_response(self.server.queue.get_history(limit, offset))

    async def get_history_item(self, request: web.Request) -> web.Response:
        """Answer `{id: entry}`, or `{}` for an unknown id."""
        prompt_id = request.match_info["prompt_id"]
        entry = self.server.queue.history.get(prompt_id)
        return web.json_response({prompt_id: entry} if entry is not None else {})

    async def post_history(self, request: web.Request) -> web.Response:
        """Clear or delete history entries."""
        body = await request.json()
        history = self.server.queue.history
        if body.get("clear"):
            history.clear()
        for prompt_id in body.get("delete", []):
            history.pop(prompt_id, None)
        return web.Response(status=200)

    async def view(self, request: web.Request) -> web.Response:
        """Serve a stored file, with /view's error statuses and conversions."""
        query = request.query
        if "filename" not in query:
            return web.Response(status=404)
        files = self.server.files
        status, data = files.view(
            query["filename"], query.get("subfolder"), query.get("type", "output")
        )
        if data is None:
            return web.Response(status=status)
        name = posixpath.basename(query["filename"])
        headers = {"Content-Disposition": f'filename="{name}"'}
        if "preview" in query or query.get("channel", "rgba") != "rgba":
            body, content_type = convert_for_view(
                data, preview=query.get("preview"), channel=query.get("channel")
            )
            return web.Response(body=body, content_type=content_type, headers=headers)
        headers["Etag"] = '"' + hashlib.sha1(data).hexdigest()[:16] + f'-{len(data):x}"'
        headers["Last-Modified"] = formatdate(usegmt=True)
        headers["Accept-Ranges"] = "bytes"
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        return web.Response(body=data, content_type=content_type, headers=headers)

    async def upload_image(self, request: web.Request) -> web.Response:
        """Store a multipart upload under ComfyUI's naming rules."""
        post = await request.post()
        image = post.get("image")
        if image is None:
            return web.Response(status=400)
        if not isinstance(image, web.FileField) or not image.filename:
            # ComfyUI reads `image.file` here, which a plain field lacks: a 500.
            raise TypeError("image is not a file field")
        overwrite = post.get("overwrite") in ("true", "1")
        kind = post.get("type")
        outcome = self.server.files.upload(
            image.filename,
            image.file.read(),
            subfolder=str(post.get("subfolder", "")),
            kind=str(kind) if kind is not None else None,
            overwrite=overwrite,
        )
        if outcome.body is None:
            return web.Response(status=outcome.status)
        return web.json_response(outcome.body)

    async def system_stats(self, request: web.Request) -> web.Response:
        """Answer the recorded /system_stats shape, with this fake's version."""
        system = {**SYSTEM_STATS["system"], "comfyui_version": self.server.rules.comfyui_version}
        return web.json_response({**SYSTEM_STATS, "system": system})

    async def features(self, request: web.Request) -> web.Response:
        """Answer the server's feature flags."""
        return web.json_response(self.server.rules.features)

    async def object_info(self, request: web.Request) -> web.Response:
        """Serve the whole catalog."""
        server = self.server
        return web.json_response(server.catalog.served_all(server.files.input_images()))

    async def object_info_class(self, request: web.Request) -> web.Response:
        """Serve one class, or `{}` when unknown."""
        server = self.server
        name = request.match_info["node_class"]
        if name not in server.catalog.classes:
            return web.json_response({})
        return web.json_response({name: server.catalog.served(name, server.files.input_images())})

    async def free(self, request: web.Request) -> web.Response:
        """Note `free_memory` (the node cache is dropped before the next prompt)."""
        body = await request.json()
        if body.get("free_memory"):
            self.server.executor.free_requested = True
        return web.Response(status=200)

    async def models(self, request: web.Request) -> web.Response:
        """List the model folder names."""
        return web.json_response(list(MODEL_FOLDERS))

    async def model_files(self, request: web.Request) -> web.Response:
        """List one folder's models (those given to the FakeComfy)."""
        folder = request.match_info["folder"]
        if folder not in MODEL_FOLDERS:
            return web.Response(status=404)
        return web.json_response(self.server.catalog.models.get(folder, []))

    async def embeddings(self, request: web.Request) -> web.Response:
        """List embeddings without their extensions."""
        names = self.server.catalog.models.get("embeddings", [])
        return web.json_response([posixpath.splitext(name)[0] for name in names])

    async def extensions(self, request: web.Request) -> web.Response:
        """List frontend extensions (none)."""
        return web.json_response([])
