"""Read API-format workflow graphs and walk their nodes, inputs and links."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NotRequired, TypedDict, TypeGuard

from bot.workflows.errors import WorkflowFormatError, WorkflowNotFound

KEYS = (
    "prompt",
    "negative",
    "seed",
    "steps",
    "cfg",
    "denoise",
    "width",
    "height",
    "batch_size",
    "checkpoint",
    "image",
)


class NodeMeta(TypedDict, total=False):
    """The `_meta` object that "Export (API)" writes beside each node."""

    title: str


class ApiNode(TypedDict):
    """One node of an API-format prompt; a link input is `[source_node_id, output_index]`."""

    class_type: str
    inputs: dict[str, Any]
    _meta: NotRequired[NodeMeta]


@dataclass(frozen=True, slots=True)
class PatchPoint:
    """One input of one node that a workflow value is written to."""

    node_id: str
    input_name: str

    def __str__(self) -> str:
        return f"{self.node_id}.{self.input_name}"


def is_link(value: object) -> TypeGuard[list[Any]]:
    """Return whether an input value is a link `[node_id, output_index]`."""
    return (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], str)
        and isinstance(value[1], int)
        and not isinstance(value[1], bool)
    )


def node_id_key(node_id: str) -> tuple[tuple[int, int, str], ...]:
    """Sort key for node ids: numeric ids numerically ("2" < "10"), subgraph ids ("5:3") by part."""
    return tuple(
        (0, int(part), "") if part.isascii() and part.isdigit() else (1, 0, part)
        for part in node_id.split(":")
    )


def inputs_of(graph: Mapping[str, Any], node_id: str) -> Mapping[str, Any]:
    """Return a node's inputs, or an empty mapping for a missing or malformed node."""
    node = graph.get(node_id)
    inputs = node.get("inputs") if isinstance(node, Mapping) else None
    return inputs if isinstance(inputs, Mapping) else {}


def class_of(graph: Mapping[str, Any], node_id: str) -> str:
    """Return a node's class_type, or "" for a missing or malformed node."""
    node = graph.get(node_id)
    class_type = node.get("class_type") if isinstance(node, Mapping) else None
    return class_type if isinstance(class_type, str) else ""


def title_of(graph: Mapping[str, Any], node_id: str) -> str | None:
    """Return a node's `_meta.title`, if it has one."""
    node = graph.get(node_id)
    meta = node.get("_meta") if isinstance(node, Mapping) else None
    title = meta.get("title") if isinstance(meta, Mapping) else None
    return title if isinstance(title, str) else None


def source_of(graph: Mapping[str, Any], node_id: str, input_name: str) -> tuple[str, int] | None:
    """Return the `(node_id, output_index)` an input is linked to, if it links to a node."""
    value = inputs_of(graph, node_id).get(input_name)
    if is_link(value) and value[0] in graph:
        return value[0], value[1]
    return None


def upstream(graph: Mapping[str, Any], start: str) -> Iterator[str]:
    """Yield the nodes that feed `start`, directly or not, nearest first."""
    seen = {start}
    frontier = [start]
    while frontier:
        following: list[str] = []
        for node_id in frontier:
            for value in inputs_of(graph, node_id).values():
                if is_link(value) and value[0] in graph and value[0] not in seen:
                    seen.add(value[0])
                    following.append(value[0])
                    yield value[0]
        frontier = following


def read_json(path: Path) -> object:
    """Read a workflow file's JSON.

    Raises:
        WorkflowNotFound: the file does not exist.
        WorkflowFormatError: unreadable, or invalid JSON (with line and column).
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise WorkflowNotFound(f"Workflow file {path} does not exist.") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkflowFormatError(f"{path.name}: cannot be read as UTF-8 text ({exc}).") from exc
    try:
        data: object = json.loads(text)
    except json.JSONDecodeError as exc:
        raise WorkflowFormatError(
            f"{path.name}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}."
        ) from exc
    return data


def read_graph(path: Path) -> dict[str, ApiNode]:
    """Read an API-format workflow file.

    Raises:
        WorkflowNotFound: the file does not exist.
        WorkflowFormatError: invalid JSON, a UI-format file, or not a mapping of nodes.
    """
    return check_api_format(read_json(path), path.name)


def check_api_format(data: object, file_name: str) -> dict[str, ApiNode]:
    """Return `data` once checked to map node ids to `{class_type, inputs}`.

    Raises:
        WorkflowFormatError: naming `file_name` and what is wrong.
    """
    if not isinstance(data, dict):
        raise WorkflowFormatError(
            f"{file_name}: expected a JSON object of nodes, got {type(data).__name__}."
        )
    if isinstance(data.get("nodes"), list) or isinstance(data.get("links"), list):
        raise WorkflowFormatError(
            f"{file_name}: this is a UI-format workflow (it has 'nodes' and 'links'); converting "
            "it needs a reachable ComfyUI server (its /object_info). Start ComfyUI and load "
            "again, or save the workflow with 'Export (API)' in ComfyUI."
        )
    if not data:
        raise WorkflowFormatError(f"{file_name}: the workflow has no nodes.")
    for node_id, node in data.items():
        if not (
            isinstance(node, dict)
            and isinstance(node.get("class_type"), str)
            and isinstance(node.get("inputs"), dict)
        ):
            raise WorkflowFormatError(
                f"{file_name}: node {node_id!r} is not an object with 'class_type' and 'inputs'; "
                "an API-format workflow maps node ids to nodes ('Export (API)' in ComfyUI)."
            )
    return data
