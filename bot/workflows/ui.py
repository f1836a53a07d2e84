"""Convert a UI-format workflow (what ComfyUI's "Save" writes) to an API-format graph.

The UI file keeps widget values as a list per node, in the order of the node's inputs on the
server, so the conversion needs the server's /object_info: which inputs are widgets, in which
order, and which seed widgets carry the extra `control_after_generate` value after them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from bot.workflows.errors import WorkflowFormatError
from bot.workflows.graph import ApiNode, check_api_format, is_link
from bot.workflows.uigraph import Literal, Scope, Source

_WIDGET_KINDS = frozenset({"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"})
_CONTROL_VALUES = frozenset({"fixed", "increment", "decrement", "randomize"})
_UPLOAD_OPTIONS = ("image_upload", "video_upload", "audio_upload")
_UPLOAD_VALUES = frozenset({"image", "video", "audio"})
_SEED_NAMES = ("seed", "noise_seed")
# Group nodes of the 2024 frontend ("workflow>NAME"), kept in extra.groupNodes.
_GROUP_NODE_PREFIXES = ("workflow>", "workflow/")


def is_ui_format(data: object) -> bool:
    """Tell whether parsed JSON is a UI-format workflow (top-level `nodes` and `links`)."""
    return isinstance(data, Mapping) and isinstance(data.get("nodes"), list)


class UiConverter:
    """Converts UI-format workflows with one server's /object_info, caching by content hash."""

    def __init__(self, object_info: Mapping[str, Any]) -> None:
        self.object_info = object_info
        self._cache: dict[str, dict[str, ApiNode]] = {}

    @property
    def cache_size(self) -> int:
        """Return how many distinct files have been converted."""
        return len(self._cache)

    def convert(self, data: Mapping[str, Any], file_name: str) -> dict[str, ApiNode]:
        """Return the API graph of the UI-format `data` (a fresh copy each time).

        Raises:
            WorkflowFormatError: the file is malformed, or converts to no node at all.
        """
        digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
        if digest not in self._cache:
            self._cache[digest] = convert_ui(data, self.object_info, file_name)
        cached = self._cache[digest]
        copied: dict[str, ApiNode] = json.loads(json.dumps(cached))
        return copied


def convert_ui(
    data: Mapping[str, Any], object_info: Mapping[str, Any], file_name: str
) -> dict[str, ApiNode]:
    """Return the API graph of UI-format `data`, as the ComfyUI frontend's "Queue" builds it.

    Reroutes are followed, PrimitiveNode values pushed into their targets, muted nodes
    dropped, bypassed nodes passed through by type, notes dropped and subgraphs expanded
    with `outer:inner` node ids.

    Raises:
        WorkflowFormatError: naming `file_name`: malformed, looping links, or no node left.
    """
    definitions = {
        str(sub["id"]): sub
        for sub in (data.get("definitions") or {}).get("subgraphs") or []
        if isinstance(sub, Mapping) and "id" in sub
    }
    graph: dict[str, Any] = {}
    try:
        for scope, local_id, node in Scope(data, definitions).real_nodes():
            class_type = str(node.get("type", ""))
            if class_type.startswith(_GROUP_NODE_PREFIXES):
                raise WorkflowFormatError(
                    f"node {scope.node_id(local_id)} is a group node ({class_type}), which "
                    "ComfyCord does not expand; in ComfyUI, convert it to a subgraph, or save "
                    "the workflow with 'Export (API)'."
                )
            spec = object_info.get(class_type)
            graph[scope.node_id(local_id)] = _api_node(
                scope, node, spec if isinstance(spec, Mapping) else None
            )
    except WorkflowFormatError as exc:
        raise WorkflowFormatError(f"{file_name}: {exc.user_message}") from exc
    return check_api_format(_needed(graph, object_info), file_name)


def _needed(graph: dict[str, Any], object_info: Mapping[str, Any]) -> dict[str, Any]:
    """Keep the output nodes and what feeds them: the only nodes ComfyUI runs and checks.

    A node of a class the server lacks counts as an output, so that nothing of it is lost.
    """
    outputs = [
        node_id
        for node_id, node in graph.items()
        if (object_info.get(node["class_type"]) or {"output_node": True}).get("output_node")
    ]
    if not outputs:
        return graph
    keep = set(outputs)
    pending = list(outputs)
    while pending:
        for value in graph[pending.pop()]["inputs"].values():
            if is_link(value) and value[0] in graph and value[0] not in keep:
                keep.add(value[0])
                pending.append(value[0])
    return {node_id: node for node_id, node in graph.items() if node_id in keep}


def _api_node(scope: Scope, node: Mapping[str, Any], spec: Mapping[str, Any] | None) -> ApiNode:
    inputs = _widget_inputs(node, spec)
    for entry in node.get("inputs") or []:
        if not isinstance(entry, Mapping) or entry.get("link") is None:
            continue
        name = str(entry.get("name", ""))
        found = scope.resolve_link(entry.get("link"))
        if isinstance(found, Source):
            inputs[name] = [found.node_id, found.slot]
        elif isinstance(found, Literal):
            inputs[name] = found.value
        elif not entry.get("widget"):
            inputs.pop(name, None)  # fed by a muted node: the input is simply not given
    class_type = str(node.get("type", ""))
    display = spec.get("display_name") if spec else None
    title = node.get("title") or display or class_type
    return {"inputs": inputs, "class_type": class_type, "_meta": {"title": str(title)}}


def _widget_inputs(node: Mapping[str, Any], spec: Mapping[str, Any] | None) -> dict[str, Any]:
    """Return the widget values of a node by input name."""
    values = node.get("widgets_values")
    if isinstance(values, Mapping):  # some custom nodes save widgets by name
        return {str(k): v for k, v in values.items() if not isinstance(v, Mapping | list)}
    widgets = _widgets(spec) if spec is not None else _listed_widgets(node)
    found: dict[str, Any] = {}
    queue = list(values) if isinstance(values, list) else []
    for position, (name, kind, options) in enumerate(widgets):
        if not queue:
            break
        found[name] = queue.pop(0)
        if queue and kind == "INT" and _has_control(name, options) and _is_control(queue[0]):
            queue.pop(0)
        is_upload = any(options.get(key) for key in _UPLOAD_OPTIONS)
        if queue and is_upload and queue[0] in _UPLOAD_VALUES:
            following = widgets[position + 1][1] if position + 1 < len(widgets) else None
            if following != "COMBO":
                queue.pop(0)
    # A widget the file holds no value for starts at its default, as in the frontend.
    for name, _, options in widgets:
        if name not in found and "default" in options:
            found[name] = options["default"]
    return found


def _is_control(value: object) -> bool:
    # Old files saved the control as a boolean (True: randomize) instead of its name.
    return isinstance(value, bool) or value in _CONTROL_VALUES


def _has_control(name: str, options: Mapping[str, Any]) -> bool:
    return bool(options.get("control_after_generate")) or name in _SEED_NAMES


def _widgets(spec: Mapping[str, Any]) -> list[tuple[str, str, Mapping[str, Any]]]:
    """Return `(name, kind, options)` of a node class's widget inputs, in the server's order."""
    specs = spec.get("input") or {}
    order = spec.get("input_order") or {
        section: list(specs.get(section) or {}) for section in ("required", "optional")
    }
    widgets: list[tuple[str, str, Mapping[str, Any]]] = []
    for section in ("required", "optional"):
        for name in order.get(section) or []:
            entry = (specs.get(section) or {}).get(name)
            if not isinstance(entry, list) or not entry:
                continue
            kind = "COMBO" if isinstance(entry[0], list) else str(entry[0])
            options = entry[1] if len(entry) > 1 and isinstance(entry[1], Mapping) else {}
            if kind in _WIDGET_KINDS and not options.get("forceInput"):
                widgets.append((name, kind, options))
    return widgets


def _listed_widgets(node: Mapping[str, Any]) -> list[tuple[str, str, Mapping[str, Any]]]:
    """Return the widgets a node of a class the server lacks lists among its inputs."""
    return [
        (str(entry.get("name")), str(entry.get("type")), {})
        for entry in node.get("inputs") or []
        if isinstance(entry, Mapping) and entry.get("widget")
    ]
