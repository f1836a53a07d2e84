"""Trace conditioning back from the samplers to the text a user writes, whatever node holds it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from bot.workflows.graph import PatchPoint, class_of, inputs_of, is_link, node_id_key, source_of
from bot.workflows.roles import Roles

Sides = dict[str, dict[str, tuple[PatchPoint, ...]]]
"""Per side ("prompt", "negative"): the text points found, by the encoder they belong to."""
_NO_NEGATIVE = frozenset({"ConditioningZeroOut"})
_MAX_STRING_HOPS = 16


def prompt_points(
    graph: Mapping[str, Any], samplers: Iterable[str], roles: Roles
) -> dict[str, tuple[PatchPoint, ...]]:
    """Trace every sampler's positive and negative conditioning back to the prompt text.

    An encoder reached from both sides counts as positive only; ConditioningZeroOut on the
    negative side means "no negative".
    """
    sides: Sides = {"prompt": {}, "negative": {}}
    for sampler in samplers:
        through = roles.guider_input(graph, sampler)
        guider = source_of(graph, sampler, through) if through else None
        holder = guider[0] if guider else sampler
        for names, side in zip(roles.sides(graph, holder), ("prompt", "negative"), strict=True):
            for name in names:
                source = source_of(graph, holder, name)
                if source is not None:
                    _encoders(graph, (*source, side), sides, roles)
    prompt = _ordered(sides["prompt"])
    return {
        "prompt": prompt,
        "negative": tuple(p for p in _ordered(sides["negative"]) if p not in prompt),
    }


def _ordered(found: Mapping[str, tuple[PatchPoint, ...]]) -> tuple[PatchPoint, ...]:
    """Return the points of each encoder, encoders in node id order, without repeats."""
    points = [point for node_id in sorted(found, key=node_id_key) for point in found[node_id]]
    return tuple(dict.fromkeys(points))


def text_points(
    graph: Mapping[str, Any], encoders: Iterable[str], roles: Roles
) -> tuple[PatchPoint, ...]:
    """Return where the text of `encoders` is written: their own widgets or the string nodes."""
    found: list[PatchPoint] = []
    for node_id in sorted(encoders, key=node_id_key):
        inputs = inputs_of(graph, node_id)
        for name in roles.text_inputs(graph, node_id):
            value = inputs[name]
            point = PatchPoint(node_id, name) if isinstance(value, str) else None
            if is_link(value):
                point = string_source(graph, value[0], value[1])
            if point is not None and point not in found:
                found.append(point)
    return tuple(found)


def string_source(
    graph: Mapping[str, Any], node_id: str, slot: int = 0, hops: int = 0
) -> PatchPoint | None:
    """Return the STRING widget a string-producing node holds, whatever its class.

    A concatenation of linked strings is followed through its first side: the user's text;
    a switch through its first input that leads to text.
    A node with several text outputs (a prompt styler's positive and negative) gives output
    `slot` from its `slot`-th text widget.
    """
    if hops > _MAX_STRING_HOPS:
        return None
    inputs = inputs_of(graph, node_id)
    literals = [name for name, value in inputs.items() if isinstance(value, str)]
    literal = literals[slot] if 0 < slot < len(literals) else next(iter(literals), None)
    linked = [value for value in inputs.values() if is_link(value)]
    if linked and (literal is None or _is_joint(inputs, literal)):
        # The first link that leads to text: a switch's boolean input leads to none.
        for source, index in linked:
            found = string_source(graph, source, index, hops + 1)
            if found is not None:
                return found
    return PatchPoint(node_id, literal) if literal is not None else None


def _is_joint(inputs: Mapping[str, Any], literal: str) -> bool:
    # StringConcatenate's `delimiter` and the like are not the text itself.
    return literal in ("delimiter", "separator") or (len(inputs) > 2 and literal != "string_a")


def _encoders(
    graph: Mapping[str, Any], start: tuple[str, int, str], sides: Sides, roles: Roles
) -> None:
    """Add the text of the encoders whose conditioning flows into an output to `sides`.

    Walking back through a node's negative output (ControlNetApplyAdvanced's second, say)
    puts what is found there on the negative side, wherever the walk started. A loader that
    encodes its own `positive` and `negative` text (Efficient Loader) gives that side's text.
    """
    seen: set[tuple[str, int, str]] = set()
    pending = [start]
    while pending:
        node_id, index, side = pending.pop()
        if (node_id, index, side) in seen:
            continue
        seen.add((node_id, index, side))
        if side == "negative" and class_of(graph, node_id) in _NO_NEGATIVE:
            continue
        if roles.text_inputs(graph, node_id):
            sides[side][node_id] = text_points(graph, (node_id,), roles)
            continue
        own = _own_text(graph, node_id, side)
        if own is not None:
            sides[side][node_id] = (own,)
            continue
        inputs = inputs_of(graph, node_id)
        for name in _split(roles.conditioning_inputs(graph, node_id), index):
            link = inputs[name]
            if link[0] in graph:
                next_side = "negative" if name.startswith("negative") else side
                pending.append((link[0], link[1], next_side))


def _own_text(graph: Mapping[str, Any], node_id: str, side: str) -> PatchPoint | None:
    """Return the text a loader encodes itself for one side: its `positive` or `negative`."""
    name = "positive" if side == "prompt" else "negative"
    value = inputs_of(graph, node_id).get(name)
    if isinstance(value, str):
        return PatchPoint(node_id, name)
    if is_link(value) and "Loader" in class_of(graph, node_id):
        return string_source(graph, value[0], value[1])
    return None


def _split(names: list[str], output_index: int) -> list[str]:
    """Return the conditioning inputs to walk back through from one output of a node.

    A node with both positive and negative inputs (ControlNetApplyAdvanced, WanImageToVideo
    and the like) passes positive out of output 0 and negative out of output 1; nodes with
    more pairs (a high and a low noise pair for Wan 2.2) keep that order: even is positive.
    """
    sides = [n for n in names if n.startswith(("positive", "negative"))]
    if any(n.startswith("positive") for n in sides) and any(
        n.startswith("negative") for n in sides
    ):
        wanted = "positive" if output_index % 2 == 0 else "negative"
        return [n for n in sides if n.startswith(wanted)]
    return names
