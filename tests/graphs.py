"""Test graphs built from the real node definitions of the recorded /object_info.

`ApiGraph` adds API-format nodes whose inputs are checked against the class's spec (unknown
inputs and missing links fail at once; widgets not given take the spec's default), so a family
graph in a test has the shape ComfyUI itself would accept. `UiGraph` builds UI-format files
("Save" in ComfyUI) node by node, with links in the root graph's array form.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent / "fixtures"
WIDGETS = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}


@functools.cache
def object_info() -> dict[str, Any]:
    info: dict[str, Any] = json.loads((FIXTURES / "object_info.json").read_text("utf-8"))
    return info


def template(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / "templates" / f"{name}.json").read_text("utf-8"))
    return data


def _entries(class_type: str) -> list[tuple[str, str, dict[str, Any], bool]]:
    """Return (name, kind, options, required) of a class's inputs in the server's order."""
    spec = object_info()[class_type]
    found = []
    for section in ("required", "optional"):
        for name in spec["input_order"].get(section, []):
            entry = spec["input"][section][name]
            kind = "COMBO" if isinstance(entry[0], list) else entry[0]
            options = entry[1] if len(entry) > 1 else {}
            if kind == "COMBO" and "default" not in options:
                choices = entry[0] if isinstance(entry[0], list) else options.get("options", [])
                options = {**options, "default": choices[0] if choices else ""}
            found.append((name, kind, options, section == "required"))
    return found


class ApiGraph(dict[str, Any]):
    """An API-format graph whose nodes follow their object_info specs."""

    def add(self, node_id: str, class_type: str, **inputs: Any) -> str:
        entries = {
            name: (kind, options, required)
            for name, kind, options, required in _entries(class_type)
        }
        unknown = set(inputs) - set(entries)
        assert not unknown, f"{class_type} has no inputs {unknown}"
        built: dict[str, Any] = {}
        for name, (kind, options, required) in entries.items():
            if name in inputs:
                built[name] = inputs[name]
            elif kind in WIDGETS and not options.get("forceInput") and "default" in options:
                built[name] = options["default"]
            else:
                assert not required, f"{class_type}.{name} ({kind}) needs a link"
        self[node_id] = {"inputs": built, "class_type": class_type}
        return node_id


class UiGraph:
    """A UI-format workflow as ComfyUI's "Save" writes it."""

    def __init__(self) -> None:
        self.nodes: list[dict[str, Any]] = []
        self.links: list[list[Any]] = []
        self.subgraphs: list[dict[str, Any]] = []

    def add(
        self,
        node_id: int,
        class_type: str,
        widgets_values: list[Any] | None = None,
        *,
        mode: int = 0,
        title: str | None = None,
        outputs: list[str] | None = None,
    ) -> int:
        if outputs is None:
            outputs = object_info()[class_type]["output"] if class_type in object_info() else []
        node: dict[str, Any] = {
            "id": node_id,
            "type": class_type,
            "mode": mode,
            "inputs": [],
            "outputs": [{"name": kind, "type": kind, "links": []} for kind in outputs],
            "properties": {},
        }
        if widgets_values is not None:
            node["widgets_values"] = widgets_values
        if title is not None:
            node["title"] = title
        self.nodes.append(node)
        return node_id

    def node(self, node_id: int) -> dict[str, Any]:
        return next(node for node in self.nodes if node["id"] == node_id)

    def link(self, origin: int, slot: int, target: int, name: str, *, widget: bool = False) -> int:
        kind = self.node(origin)["outputs"][slot]["type"]
        link_id = len(self.links) + 1
        self.links.append(
            [link_id, origin, slot, target, self._slot(target, name, kind, widget), kind]
        )
        self.node(origin)["outputs"][slot]["links"].append(link_id)
        return link_id

    def _slot(self, target: int, name: str, kind: str, widget: bool) -> int:
        inputs = self.node(target)["inputs"]
        entry: dict[str, Any] = {"name": name, "type": kind, "link": len(self.links) + 1}
        if widget:
            entry["widget"] = {"name": name}
        inputs.append(entry)
        return len(inputs) - 1

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "last_node_id": max((n["id"] for n in self.nodes), default=0),
            "nodes": self.nodes,
            "links": self.links,
            "version": 0.4,
        }
        if self.subgraphs:
            data["definitions"] = {"subgraphs": self.subgraphs}
        return data
