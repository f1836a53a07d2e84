"""Walk a UI-format graph: scopes of subgraphs, links followed through Reroutes and bypasses."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from bot.workflows.errors import WorkflowFormatError

MUTED, BYPASSED = 2, 4
SUBGRAPH_INPUT, SUBGRAPH_OUTPUT = -10, -20
NOTES = frozenset(
    {"Note", "MarkdownNote", "Note Plus (mtb)", "Label (rgthree)", "Bookmark (rgthree)"}
)
REROUTES = frozenset({"Reroute", "Reroute (rgthree)"})
# Frontend-only nodes: they never reach the server, whatever they are linked to.
VIRTUAL = NOTES | REROUTES | {"PrimitiveNode", "GetNode", "SetNode"}
_MAX_HOPS = 150  # a link passes through at most this many Reroutes, bypasses and subgraph edges


@dataclass(frozen=True, slots=True)
class Source:
    """An output of a node of the API graph: `[node_id, slot]` once written."""

    node_id: str
    slot: int


@dataclass(frozen=True, slots=True)
class Literal:
    """A value pushed into an input (a PrimitiveNode's, or a subgraph's promoted widget)."""

    value: Any


Resolved = Source | Literal | None


class Scope:
    """One graph level: the root graph or a subgraph instance, with its `outer:inner` id path."""

    def __init__(
        self,
        graph: Mapping[str, Any],
        definitions: Mapping[str, Mapping[str, Any]],
        path: tuple[str, ...] = (),
        parent: tuple[Scope, Mapping[str, Any]] | None = None,
    ) -> None:
        self.definitions = definitions
        self.path = path
        self.parent = parent
        self.inputs = _list(graph.get("inputs"))
        self.nodes: dict[str, Mapping[str, Any]] = {}
        for node in _list(graph.get("nodes")):
            if isinstance(node, Mapping) and "id" in node:
                self.nodes[str(node["id"])] = node
        self.links: dict[int, tuple[str, int, str, int]] = {}
        for link in _list(graph.get("links")):
            parsed = _link(link)
            if parsed is not None:
                self.links[parsed[0]] = parsed[1:]

    def node_id(self, local_id: str) -> str:
        """Return the API id of a node of this scope (`outer:inner` inside subgraphs)."""
        return ":".join((*self.path, local_id))

    def child(self, node: Mapping[str, Any]) -> Scope:
        """Return the scope of a subgraph instance node of this scope."""
        definition = self.definitions[str(node["type"])]
        if len(self.path) > 32:
            raise WorkflowFormatError("subgraphs are nested more than 32 deep (a loop?).")
        return Scope(definition, self.definitions, (*self.path, str(node["id"])), (self, node))

    def real_nodes(self) -> Iterator[tuple[Scope, str, Mapping[str, Any]]]:
        """Yield every node that reaches the server, subgraphs expanded, muted ones dropped."""
        for local_id, node in self.nodes.items():
            mode = node.get("mode", 0)
            kind = str(node.get("type", ""))
            if mode in (MUTED, BYPASSED) or kind in VIRTUAL:
                continue
            if kind in self.definitions:
                yield from self.child(node).real_nodes()
            else:
                yield self, local_id, node

    def resolve_link(self, link_id: object, hops: int = 0) -> Resolved:
        """Return what a link of this scope carries, followed to a real node or a value."""
        if not isinstance(link_id, int) or link_id not in self.links:
            return None
        origin, slot, _, _ = self.links[link_id]
        return self.resolve_output(origin, slot, hops + 1)

    def resolve_output(self, local_id: str, slot: int, hops: int = 0) -> Resolved:
        """Return what output `slot` of node `local_id` carries to its consumers."""
        if hops > _MAX_HOPS:
            raise WorkflowFormatError("links go round in a loop (through Reroutes or bypasses).")
        if local_id == str(SUBGRAPH_INPUT):
            return self._from_outside(slot, hops)
        node = self.nodes.get(local_id)
        if node is None or node.get("mode", 0) == MUTED:
            return None
        if node.get("mode", 0) == BYPASSED:
            return self._bypass(node, slot, hops)
        kind = str(node.get("type", ""))
        if kind in self.definitions:
            return self.child(node)._to_outside(slot, hops)
        if kind in REROUTES:
            return self.resolve_input(node, 0, hops)
        if kind == "PrimitiveNode":
            values = node.get("widgets_values")
            return Literal(values[0]) if isinstance(values, list) and values else None
        if kind == "GetNode":
            return self._get_node(node, hops)
        if kind in VIRTUAL:
            return None
        return Source(self.node_id(local_id), slot)

    def resolve_input(self, node: Mapping[str, Any], index: int, hops: int) -> Resolved:
        """Return what input number `index` of a node of this scope receives."""
        inputs = _list(node.get("inputs"))
        entry = inputs[index] if 0 <= index < len(inputs) else None
        return self.resolve_link(entry.get("link"), hops) if isinstance(entry, Mapping) else None

    def _bypass(self, node: Mapping[str, Any], slot: int, hops: int) -> Resolved:
        # As ComfyUI's frontend: the input at the same index if its type fits, else the first
        # input of the output's type.
        outputs, inputs = _list(node.get("outputs")), _list(node.get("inputs"))
        wanted = _type(outputs[slot]) if 0 <= slot < len(outputs) else ""
        if slot < len(inputs) and _type(inputs[slot]) in (wanted, "*"):
            return self.resolve_input(node, slot, hops)
        for index, entry in enumerate(inputs):
            if _type(entry) == wanted:
                return self.resolve_input(node, index, hops)
        return None

    def _from_outside(self, slot: int, hops: int) -> Resolved:
        """Return what the subgraph instance receives on input `slot` of its definition.

        An input the instance lists is followed by name; one it does not list (or lists as a
        widget) is a promoted widget, its value in the instance's `widgets_values`.
        """
        if self.parent is None or not 0 <= slot < len(self.inputs):
            return None
        outer, instance = self.parent
        listed = {
            str(entry.get("name")): entry
            for entry in _list(instance.get("inputs"))
            if isinstance(entry, Mapping)
        }
        name = str(self.inputs[slot].get("name")) if isinstance(self.inputs[slot], Mapping) else ""
        entry = listed.get(name)
        if entry is not None and entry.get("link") is not None:
            return outer.resolve_link(entry.get("link"), hops)
        widgets = [
            str(item.get("name"))
            for item in self.inputs
            if isinstance(item, Mapping)
            and (str(item.get("name")) not in listed or listed[str(item.get("name"))].get("widget"))
        ]
        values = _list(instance.get("widgets_values"))
        index = widgets.index(name) if name in widgets else len(values)
        return Literal(values[index]) if index < len(values) else None

    def _to_outside(self, slot: int, hops: int) -> Resolved:
        for origin, origin_slot, target, target_slot in self.links.values():
            if target == str(SUBGRAPH_OUTPUT) and target_slot == slot:
                return self.resolve_output(origin, origin_slot, hops + 1)
        return None

    def _get_node(self, node: Mapping[str, Any], hops: int) -> Resolved:
        name = _list(node.get("widgets_values"))[:1]
        for other in self.nodes.values():
            if other.get("type") == "SetNode" and _list(other.get("widgets_values"))[:1] == name:
                return self.resolve_input(other, 0, hops + 1)
        return None


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _type(entry: object) -> str:
    kind = entry.get("type") if isinstance(entry, Mapping) else None
    return kind if isinstance(kind, str) else ""


def _link(link: object) -> tuple[int, str, int, str, int] | None:
    """Parse `[id, origin, slot, target, slot, type]` (root graph) or an object (subgraphs)."""
    if isinstance(link, list) and len(link) >= 5:
        fields = link[:5]
    elif isinstance(link, Mapping):
        keys = ("id", "origin_id", "origin_slot", "target_id", "target_slot")
        fields = [link.get(key) for key in keys]
    else:
        return None
    link_id, origin, origin_slot, target, target_slot = fields
    if not all(isinstance(v, int) for v in (link_id, origin_slot, target_slot)):
        return None
    return link_id, str(origin), origin_slot, str(target), target_slot
