"""The fake's jobs API (ComfyUI 0.38): GET /api/jobs, GET /api/jobs/{id}, POST .../cancel."""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.fakes.comfy_queue import QueueItem

if TYPE_CHECKING:
    from tests.fakes.comfy import FakeComfy

STATUSES = ("pending", "in_progress", "completed", "failed", "cancelled")


def is_canonical(value: Any) -> bool:
    """Tell whether a value is a UUID string in canonical form (ComfyUI's validate_job_id)."""
    if not isinstance(value, str):
        return False
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


def _queued(item: QueueItem, status: str, *, detail: bool) -> dict[str, Any]:
    job: dict[str, Any] = {
        "id": item.prompt_id,
        "status": status,
        "priority": item.number,
        "outputs_count": 0,
        "previewable_outputs_count": 0,
    }
    if "create_time" in item.extra_data:
        job["create_time"] = item.extra_data["create_time"]
    if detail:
        job["workflow"] = {"prompt": item.prompt, "extra_data": item.extra_data}
    return job


def _finished(prompt_id: str, entry: dict[str, Any], *, detail: bool) -> dict[str, Any]:
    number, _, prompt, extra_data, _ = entry["prompt"]
    status = entry["status"]
    job: dict[str, Any] = {"id": prompt_id, "priority": number}
    interrupted = False
    for name, data in status["messages"]:
        if name == "execution_start":
            job["execution_start_time"] = data.get("timestamp")
        elif name in ("execution_success", "execution_error", "execution_interrupted"):
            job["execution_end_time"] = data.get("timestamp")
            if name == "execution_error":
                job["execution_error"] = data
            interrupted = interrupted or name == "execution_interrupted"
    if status["status_str"] == "success":
        job["status"] = "completed"
    else:
        job["status"] = "cancelled" if interrupted else "failed"
    files = [
        item
        for node in entry["outputs"].values()
        for items in node.values()
        if isinstance(items, list)
        for item in items
        if isinstance(item, dict)
    ]
    job["outputs_count"] = len(files)
    if files:
        job["preview_output"] = files[0]
    if "create_time" in extra_data:
        job["create_time"] = extra_data["create_time"]
    if detail:
        job["outputs"] = entry["outputs"]
        job["execution_status"] = status
        job["workflow"] = {"prompt": prompt, "extra_data": extra_data}
    return job


class JobsApi:
    """Route handlers of the jobs API over a FakeComfy's queue and history."""

    def __init__(self, server: FakeComfy) -> None:
        self.server = server

    def routes(self) -> list[tuple[str, str, Any]]:
        """Return (method, path, handler); ComfyUI registers these under /api/jobs itself."""
        return [
            ("GET", "/api/jobs", self.list_jobs),
            ("POST", "/api/jobs/cancel", self.cancel_many),
            ("GET", "/api/jobs/{job_id}", self.get_job),
            ("POST", "/api/jobs/{job_id}/cancel", self.cancel_one),
        ]

    def _all(self) -> list[dict[str, Any]]:
        queue = self.server.queue
        jobs = [_queued(queue.running, "in_progress", detail=False)] if queue.running else []
        jobs += [_queued(entry[2], "pending", detail=False) for entry in queue.heap]
        jobs += [_finished(p, e, detail=False) for p, e in queue.history.items()]
        return jobs

    async def list_jobs(self, request: web.Request) -> web.Response:
        """List jobs, filtered by status, newest first, paged by limit and offset."""
        query = request.query
        wanted = [s.strip().lower() for s in query.get("status", "").split(",") if s.strip()]
        if bad := [s for s in wanted if s not in STATUSES]:
            valid = ", ".join(STATUSES)
            message = f"Invalid status value(s): {', '.join(bad)}. Valid values: {valid}"
            return web.json_response({"error": message}, status=400)
        limit: int | None = None
        if "limit" in query:
            try:
                limit = int(query["limit"])
            except ValueError:
                return web.json_response({"error": "limit must be an integer"}, status=400)
            if limit <= 0:
                return web.json_response({"error": "limit must be a positive integer"}, status=400)
        offset = max(0, int(query.get("offset", 0)))
        jobs = [job for job in self._all() if not wanted or job["status"] in wanted]
        jobs.sort(key=lambda job: job.get("create_time", 0), reverse=True)
        page = jobs[offset:][:limit] if limit is not None else jobs[offset:]
        pagination = {
            "offset": offset,
            "limit": limit,
            "total": len(jobs),
            "has_more": offset + len(page) < len(jobs),
        }
        return web.json_response({"jobs": page, "pagination": pagination})

    async def get_job(self, request: web.Request) -> web.Response:
        """Answer one job in full, or 404 `{"error": "Job not found"}`."""
        prompt_id = request.match_info["job_id"]
        queue = self.server.queue
        if prompt_id in queue.history:
            return web.json_response(_finished(prompt_id, queue.history[prompt_id], detail=True))
        if queue.running is not None and queue.running.prompt_id == prompt_id:
            return web.json_response(_queued(queue.running, "in_progress", detail=True))
        for _, _, item in queue.heap:
            if item.prompt_id == prompt_id:
                return web.json_response(_queued(item, "pending", detail=True))
        return web.json_response({"error": "Job not found"}, status=404)

    def _cancel(self, prompt_id: str) -> bool:
        queue = self.server.queue
        self.server.cancels.append(prompt_id)
        if queue.running is not None and queue.running.prompt_id == prompt_id:
            # ComfyUI's interrupt_if_running: the same interrupt as POST /interrupt's targeted one.
            self.server.interrupts.append({"prompt_id": prompt_id})
            self.server.executor.interrupted = True
            return True
        return queue.delete(prompt_id)

    async def cancel_one(self, request: web.Request) -> web.Response:
        """Cancel one job; always 200, `{"cancelled": false}` for a finished or unknown id."""
        return web.json_response({"cancelled": self._cancel(request.match_info["job_id"])})

    async def cancel_many(self, request: web.Request) -> web.Response:
        """Cancel `{"job_ids": [...]}`; a malformed id rejects the whole batch."""
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return web.json_response({"error": "Request body must be valid JSON"}, status=400)
        job_ids = body.get("job_ids") if isinstance(body, dict) else None
        if not isinstance(job_ids, list):
            return web.json_response({"error": "job_ids must be a list"}, status=400)
        invalid = [j if isinstance(j, str) else repr(j) for j in job_ids if not is_canonical(j)]
        if invalid:
            return web.json_response(
                {"error": "job_ids contains invalid id(s)", "invalid_ids": invalid}, status=400
            )
        results = [self._cancel(job_id) for job_id in job_ids]
        return web.json_response({"cancelled": any(results)})
