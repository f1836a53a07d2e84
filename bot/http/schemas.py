"""The OpenAPI component schemas: the JSON shapes the HTTP middleware takes and answers."""

from __future__ import annotations

from typing import Any


def ref(name: str) -> dict[str, str]:
    """Return a reference to one of the component schemas."""
    return {"$ref": f"#/components/schemas/{name}"}


_NULLABLE_STR = {"type": ["string", "null"]}
_NULLABLE_INT = {"type": ["integer", "null"]}
SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            }
        },
    },
    "ImageUpload": {
        "type": "object",
        "required": ["image"],
        "properties": {
            "image": {"type": "string", "format": "binary"},
            "input": {"type": "integer", "minimum": 0},
        },
    },
    "Upload": {
        "type": "object",
        "properties": {
            "input": {"type": "integer"},
            "node_id": {"type": "string"},
            "filename": {"type": "string"},
            "size": {"type": "integer"},
            "content_type": {"type": "string"},
            "job": ref("Job"),
        },
    },
    "PromptUpdate": {
        "type": "object",
        "description": (
            "Either {text, node_id?} (without node_id: the workflow's positive prompt), "
            "{node_id, input, value} for any node input, and/or workflow values by name. "
            "null resets a value to the workflow's own."
        ),
        "properties": {
            "text": _NULLABLE_STR,
            "node_id": {"type": ["string", "integer"]},
            "input": {"type": "string"},
            "value": {},
            "prompt": _NULLABLE_STR,
            "negative": _NULLABLE_STR,
            "checkpoint": _NULLABLE_STR,
            **{k: _NULLABLE_INT for k in ("seed", "steps", "width", "height", "batch_size")},
            **{k: {"type": ["number", "null"]} for k in ("cfg", "denoise")},
        },
    },
    "Values": {
        "type": "object",
        "properties": {"values": {"type": "object"}, "overrides": {"type": "array"}},
    },
    "Job": {
        "type": "object",
        "required": ["job_id", "prompt_id", "state", "position"],
        "properties": {
            "job_id": {"type": "string"},
            "prompt_id": {"type": "string"},
            "state": {
                "enum": ["waiting", "queued", "running", "done", "failed", "cancelled", "lost"]
            },
            "position": _NULLABLE_INT,
            "workflow": {"type": "string"},
            "seed": _NULLABLE_INT,
            "progress": ref("Progress"),
            "error": {
                "type": ["object", "null"],
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "node_id": _NULLABLE_STR,
                    "node_type": _NULLABLE_STR,
                },
            },
            "cancelled_by": _NULLABLE_STR,
            "outputs_released": {
                "type": "boolean",
                "description": "The outputs are no longer kept (only the newest jobs keep theirs).",
            },
            "outputs": {"type": "array", "items": ref("Output")},
        },
    },
    "Progress": {
        "type": "object",
        "properties": {
            "node_id": _NULLABLE_STR,
            "node": _NULLABLE_STR,
            "node_class": _NULLABLE_STR,
            "step": {"type": "integer"},
            "steps": {"type": "integer"},
            "percent": {"type": "number"},
            "nodes_done": {"type": "integer"},
            "nodes_total": {"type": "integer"},
            "cached": {"type": "integer"},
            "elapsed": {"type": "number"},
            "eta": {"type": ["number", "null"]},
        },
    },
    "Output": {
        "type": "object",
        "properties": {
            "index": {"type": "integer"},
            "filename": {"type": "string"},
            "content_type": {"type": "string"},
            "size": {"type": "integer"},
            "url": {"type": "string"},
        },
    },
    "Interrupted": {
        "type": "object",
        "properties": {
            "jobs": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "job_id": {"type": "string"},
                        "result": {"enum": ["removed", "interrupted", "not_found"]},
                    },
                },
            }
        },
    },
    "WorkflowState": {
        "type": "object",
        "properties": {
            "workflow": {"type": "object"},
            "values": {"type": "object"},
            "images": {"type": "array"},
            "overrides": {"type": "array"},
            "points": {"type": "object"},
            "graph": {"type": "object", "description": "API-format graph queued now"},
        },
    },
    "Health": {
        "type": "object",
        "properties": {
            "status": {"enum": ["ok", "unavailable"]},
            "comfyui": {"type": "object"},
            "jobs": {"type": "object"},
            "workflow": {"type": "string"},
        },
    },
}
