"""The OpenAPI 3.1 description of the HTTP middleware, written by hand beside its routes.

One literal per path here; the shapes they take and answer are in `bot.http.schemas`.
"""

from __future__ import annotations

import copy
from typing import Any

from bot import __version__
from bot.http.schemas import SCHEMAS, ref


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    texts = {
        400: "Malformed request (not JSON, wrong shape)",
        401: "Missing or wrong API token",
        403: "Sent by a browser for another site, or under a foreign Host name",
        404: "Unknown job, node or output",
        409: "The job has not finished yet",
        413: "Body or image over the size limit (ours, or every ComfyUI server's upload limit)",
        415: "The body is not application/json",
        422: "The value or image does not fit the workflow",
        429: "Too many jobs or event streams, or the queue is full",
        503: "ComfyUI is not connected",
    }
    # Every route can refuse a cross-site request (403) or one aiohttp cannot parse (400).
    every = sorted({400, 403, *statuses})
    return {str(s): _json(ref("Error"), texts[s]) for s in every}


_JOB_ID = {
    "name": "job_id",
    "in": "path",
    "required": True,
    "description": "The job id, which is also the ComfyUI prompt id",
    "schema": {"type": "string"},
}
_INPUT = {
    "name": "input",
    "in": "query",
    "required": False,
    "description": "Which image input (LoadImage) to fill, 0-based (default 0)",
    "schema": {"type": "integer", "minimum": 0},
}
_QUEUE = {
    "summary": "Queue the workflow as it is set now",
    "responses": {
        "202": _json(ref("Job"), "The job was accepted (see Location)"),
        **_errors(401, 413, 422, 429, 503),
    },
}

_PATHS: dict[str, Any] = {
    "/upload/image": {
        "post": {
            "summary": "Set an input image (sent to ComfyUI under a unique name when queued)",
            "parameters": [_INPUT],
            "requestBody": {
                "required": True,
                "content": {"multipart/form-data": {"schema": ref("ImageUpload")}},
            },
            "responses": {
                "200": _json(ref("Upload"), "The image is set"),
                "202": _json(ref("Upload"), "The image is set and a run queued (auto-execute)"),
                **_errors(400, 401, 413, 422, 429, 503),
            },
        }
    },
    "/update/prompt": {
        "post": {
            "summary": "Set prompt text, other workflow values or a node's input",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": ref("PromptUpdate")}},
            },
            "responses": {
                "200": _json(ref("Values"), "The values now set"),
                **_errors(400, 401, 404, 413, 415, 422),
            },
        }
    },
    "/queue": {
        "get": {**_QUEUE, "description": "Same as POST; kept for clients of the original."},
        "post": _QUEUE,
    },
    "/interrupt": {
        "post": {
            "summary": "Cancel every pending or running job of this server (nobody else's)",
            "responses": {
                "200": _json(ref("Interrupted"), "What happened to each job"),
                **_errors(401, 503),
            },
        }
    },
    "/interrupt/{job_id}": {
        "post": {
            "summary": "Cancel one job of this server",
            "parameters": [_JOB_ID],
            "responses": {
                "200": _json(ref("Interrupted"), "What happened to the job"),
                **_errors(401, 404, 503),
            },
        }
    },
    "/jobs/{job_id}": {
        "get": {
            "summary": "A job's state, queue position, progress, error and outputs",
            "parameters": [_JOB_ID],
            "responses": {"200": _json(ref("Job"), "The job"), **_errors(401, 404)},
        }
    },
    "/jobs/{job_id}/outputs/{n}": {
        "get": {
            "summary": "The bytes of one output of a finished job",
            "parameters": [
                _JOB_ID,
                {"name": "n", "in": "path", "required": True, "schema": {"type": "integer"}},
            ],
            "responses": {
                "200": {
                    "description": "The file, with its content type",
                    "content": {"image/*": {"schema": {"type": "string", "format": "binary"}}},
                },
                **_errors(401, 404, 409),
            },
        }
    },
    "/events": {
        "get": {
            "summary": "Server-Sent Events: `event: job` with a Job as data, on every change",
            "description": (
                "On connecting, the latest state of each recent job of this server is sent; "
                "then one event per change, the newest per job winning for a slow reader. "
                "Lines starting with ':' are keep-alive comments."
            ),
            "responses": {
                "200": {
                    "description": "An endless event stream",
                    "content": {"text/event-stream": {"schema": {"type": "string"}}},
                },
                **_errors(401, 429),
            },
        }
    },
    "/workflow": {
        "get": {
            "summary": "The workflow as it would be queued now, with the values set",
            "responses": {"200": _json(ref("WorkflowState"), "The current state"), **_errors(401)},
        }
    },
    "/health": {
        "get": {
            "summary": "Is ComfyUI connected; how many jobs (open even with a token)",
            "security": [],
            "responses": {
                "200": _json(ref("Health"), "ComfyUI is connected"),
                "503": _json(ref("Health"), "ComfyUI is not connected"),
                **_errors(),
            },
        }
    },
    "/metrics": {
        "get": {
            "summary": "Prometheus metrics: jobs, job times, servers, ComfyUI requests",
            "responses": {
                "200": {
                    "description": "Prometheus text format",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                },
                **_errors(401),
            },
        }
    },
    "/openapi.json": {
        "get": {
            "summary": "This document",
            "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1"), **_errors(401)},
        }
    },
}


def spec(*, has_token: bool) -> dict[str, Any]:
    """Return the OpenAPI document; with a token, every path but /health needs it."""
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "ComfyCord HTTP middleware",
            "version": __version__,
            "description": "Set a workflow's inputs, queue it on ComfyUI, follow and fetch jobs.",
        },
        "paths": copy.deepcopy(_PATHS),
        "components": {
            "schemas": copy.deepcopy(SCHEMAS),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
    if has_token:
        document["security"] = [{"bearer": []}]
    return document
