"""Find a workflow's patch points by tracing its API-format graph back from the sampler."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from bot.workflows.graph import (
    KEYS,
    PatchPoint,
    class_of,
    inputs_of,
    is_link,
    node_id_key,
    source_of,
    upstream,
)

Points = dict[str, tuple[PatchPoint, ...]]

SAMPLERS = frozenset({"KSampler", "KSamplerAdvanced", "SamplerCustom", "SamplerCustomAdvanced"})
# STRING inputs of the text encoders (CLIPTextEncode, ...SDXL, ...Flux, ...SD3, Qwen/HiDream).
TEXT_INPUTS = ("text", "text_g", "text_l", "clip_l", "clip_g", "t5xxl", "prompt")
# Where a widget converted to an input keeps its value: Primitive* nodes and friends.
_RELAY_INPUTS = ("value", "text", "string", "prompt", "seed", "noise_seed", "int", "float")
_NUMBER = (int, float)
_CONDITIONING_INPUT = re.compile(r"^(positive|negative|cond)")
_EMPTY_LATENT = re.compile(r"^Empty\w*Latent")
# The guider's inputs that carry the positive side (CFGGuider, BasicGuider, DualCFGGuider).
_POSITIVE_INPUTS = ("positive", "conditioning", "cond1", "cond2")
_SAMPLER_SETTINGS: Mapping[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "seed": (("", ("seed", "noise_seed")), ("noise", ("noise_seed", "seed"))),
    "steps": (("", ("steps",)), ("sigmas", ("steps",))),
    "cfg": (("", ("cfg",)), ("guider", ("cfg",))),
    "denoise": (("", ("denoise",)), ("sigmas", ("denoise",))),
}
"""Per key: (link input leading from the sampler to the node, or "" for the sampler; inputs)."""


def detect_points(graph: Mapping[str, Any]) -> Points:
    """Return the patch points of every key found in `graph` (an empty tuple where none is)."""
    points: Points = dict.fromkeys(KEYS, ())
    samplers = _samplers(graph)
    primary = samplers[0] if samplers else None
    if primary is not None:
        points.update(_sampler_points(graph, primary))
        points.update(_prompt_points(graph, samplers))
    ordered = sorted(graph, key=node_id_key)
    # Nearest to the first sampler wins (the base model, not a refiner's), else lowest id.
    candidates = [*upstream(graph, primary), *ordered] if primary else ordered
    latent = _first(candidates, lambda node_id: bool(_EMPTY_LATENT.match(class_of(graph, node_id))))
    if latent is not None:
        for key in ("width", "height", "batch_size"):
            points[key] = _literal(graph, latent, (key,), kind=_NUMBER)
    checkpoints = (_literal(graph, node_id, ("ckpt_name",), kind=str) for node_id in candidates)
    points["checkpoint"] = next((found for found in checkpoints if found), ())
    points["image"] = tuple(
        PatchPoint(node_id, "image")
        for node_id in ordered
        if class_of(graph, node_id) == "LoadImage" and "image" in inputs_of(graph, node_id)
    )
    return points


def _samplers(graph: Mapping[str, Any]) -> list[str]:
    """Return the samplers, the first one fed by no other sampler first, then by node id."""
    samplers = sorted(
        (node_id for node_id in graph if class_of(graph, node_id) in SAMPLERS), key=node_id_key
    )
    first = [s for s in samplers if not any(u in samplers for u in upstream(graph, s))]
    return first + [s for s in samplers if s not in first]


def _first(node_ids: Iterable[str], predicate: Callable[[str], bool]) -> str | None:
    return next((node_id for node_id in node_ids if predicate(node_id)), None)


def _literal(
    graph: Mapping[str, Any],
    node_id: str,
    names: tuple[str, ...],
    *,
    kind: type | tuple[type, ...] = object,
) -> tuple[PatchPoint, ...]:
    """Return the point of the first of `names` on the node holding a value of type `kind`.

    An input linked to another node (a widget converted to an input) is followed one hop to
    the value on that node, such as a PrimitiveInt's `value`.
    """
    inputs = inputs_of(graph, node_id)
    for name in names:
        if name not in inputs:
            continue
        value = inputs[name]
        if not is_link(value):
            return (PatchPoint(node_id, name),) if isinstance(value, kind) else ()
        relay = value[0]
        relay_inputs = inputs_of(graph, relay)
        for relay_name in (name, *_RELAY_INPUTS):
            relay_value = relay_inputs.get(relay_name)
            if relay_name in relay_inputs and not is_link(relay_value):
                return (PatchPoint(relay, relay_name),) if isinstance(relay_value, kind) else ()
        return ()
    return ()


def _sampler_points(graph: Mapping[str, Any], sampler: str) -> Points:
    points: Points = {}
    for key, places in _SAMPLER_SETTINGS.items():
        for via, names in places:
            source = source_of(graph, sampler, via) if via else (sampler, 0)
            found = _literal(graph, source[0], names, kind=_NUMBER) if source else ()
            if found:
                points[key] = found
                break
    return points


def _prompt_points(graph: Mapping[str, Any], samplers: list[str]) -> Points:
    """Trace every sampler's positive and negative conditioning back to its text encoders.

    An encoder reached from both sides (a negative made by ConditioningZeroOut of the
    positive) counts as positive only.
    """
    positive: set[str] = set()
    negative: set[str] = set()
    for sampler in samplers:
        guider = source_of(graph, sampler, "guider")
        holder = guider[0] if guider else sampler
        for name in _POSITIVE_INPUTS:
            positive.update(_encoders(graph, source_of(graph, holder, name)))
        negative.update(_encoders(graph, source_of(graph, holder, "negative")))
    return {
        "prompt": _text_points(graph, positive),
        "negative": _text_points(graph, negative - positive),
    }


def _text_points(graph: Mapping[str, Any], encoders: Iterable[str]) -> tuple[PatchPoint, ...]:
    return tuple(
        point
        for node_id in sorted(encoders, key=node_id_key)
        for name in TEXT_INPUTS
        for point in _literal(graph, node_id, (name,), kind=str)
    )


def _encoders(graph: Mapping[str, Any], source: tuple[str, int] | None) -> set[str]:
    """Return the text encoders whose conditioning flows into the output `source`."""
    found: set[str] = set()
    seen: set[tuple[str, int]] = set()
    pending = [source] if source else []
    while pending:
        node_id, index = pending.pop()
        if (node_id, index) in seen:
            continue
        seen.add((node_id, index))
        if _text_points(graph, (node_id,)):
            found.add(node_id)
            continue
        inputs = inputs_of(graph, node_id)
        for name in _conditioning_inputs(inputs, index):
            link = inputs[name]
            if link[0] in graph:
                pending.append((link[0], link[1]))
    return found


def _conditioning_inputs(inputs: Mapping[str, Any], output_index: int) -> list[str]:
    """Return the conditioning inputs to walk back through from one output of a node.

    A node with both positive and negative inputs (ControlNetApplyAdvanced and the like)
    passes positive out of output 0 and negative out of output 1.
    """
    names = [n for n in inputs if _CONDITIONING_INPUT.match(n) and is_link(inputs[n])]
    sides = [n for n in names if n.startswith(("positive", "negative"))]
    if any(n.startswith("positive") for n in sides) and any(
        n.startswith("negative") for n in sides
    ):
        wanted = "positive" if output_index == 0 else "negative"
        return [n for n in sides if n.startswith(wanted)]
    return names
