"""PromptRejected from a 400 answer of POST /prompt, whatever shape the server gave it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.comfy.errors import NodeError, PromptRejected
from bot.comfy.shapes import list_at, object_at, optional_str


def rejection(data: Any) -> PromptRejected:
    """Turn a 400 answer of POST /prompt into a PromptRejected, whatever its shape."""
    answer = data if isinstance(data, dict) else {}
    top = answer.get("error")
    if isinstance(top, str) or not isinstance(top, dict):
        # Older servers and forks answer `{"error": "no prompt", "node_errors": []}`.
        text = top if isinstance(top, str) and top else "ComfyUI refused the prompt"
        top = {"type": "", "message": text}
    error_type, message = optional_str(top, "type") or "", optional_str(top, "message") or ""
    return PromptRejected(error_type, message, node_errors_from(answer))


def node_errors_from(data: Mapping[str, Any]) -> tuple[NodeError, ...]:
    """Turn a 400 answer's `error` and `node_errors` into one NodeError per bad input."""
    errors: list[NodeError] = []
    node_errors = data.get("node_errors")
    for node_id, entry in (node_errors if isinstance(node_errors, dict) else {}).items():
        entry = entry if isinstance(entry, dict) else {}
        for error in (e for e in list_at(entry, "errors") if isinstance(e, dict)):
            extra = object_at(error, "extra_info")
            errors.append(
                NodeError(
                    node_id=str(node_id),
                    class_type=optional_str(entry, "class_type"),
                    error_type=str(error.get("type", "")),
                    message=str(error.get("message", "")),
                    details=str(error.get("details", "")),
                    input_name=optional_str(extra, "input_name"),
                )
            )
    if not errors:
        # invalid_prompt and prompt_no_outputs carry no node_errors, only a top-level error.
        raw = data.get("error")
        top = raw if isinstance(raw, dict) else {"message": raw if isinstance(raw, str) else ""}
        details = str(top.get("details", ""))
        node_id = details.removeprefix("Node ID '#").removesuffix("'") if "#" in details else None
        errors.append(
            NodeError(
                node_id=node_id,
                class_type=None,
                error_type=str(top.get("type", "")),
                message=str(top.get("message", "")),
                details=details,
                input_name=None,
            )
        )
    return tuple(errors)
