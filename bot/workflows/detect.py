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
from bot.workflows.prompts import prompt_points
from bot.workflows.roles import Roles

Points = dict[str, tuple[PatchPoint, ...]]

SAMPLERS = frozenset({"KSampler", "KSamplerAdvanced", "SamplerCustom", "SamplerCustomAdvanced"})
# Where a widget converted to an input keeps its value: Primitive* nodes and friends.
_RELAY_INPUTS = ("value", "text", "string", "prompt", "seed", "noise_seed", "int", "float")
_NUMBER = (int, float)
_EMPTY_LATENT = re.compile(r"(^|_)Empty\w*Latent|Latent\w*Video$|ToVideo(Latent)?$")
_IMAGE_LOADERS = frozenset({"LoadImage", "LoadImageMask"})
_NO_NOISE = ("disable", False)
_SAMPLER_SETTINGS: Mapping[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "steps": (("", ("steps",)), ("sigmas", ("steps",))),
    "cfg": (("", ("cfg",)), ("guider", ("cfg",))),
    "denoise": (("", ("denoise",)), ("sigmas", ("denoise",))),
}
"""Per key: (link input leading from the sampler to the node, or "" for the sampler; inputs)."""


def detect_points(graph: Mapping[str, Any], object_info: Mapping[str, Any] | None = None) -> Points:
    """Return the patch points of every key found in `graph` (an empty tuple where none is).

    With a server's `object_info`, custom nodes are also read by the types of their inputs.
    """
    roles = Roles(object_info)
    points: Points = dict.fromkeys(KEYS, ())
    samplers = find_samplers(graph, roles)
    primary = samplers[0] if samplers else None
    if primary is not None:
        points.update(_sampler_points(graph, primary))
        points["seed"] = _seed_points(graph, samplers, roles)
        points.update(prompt_points(graph, samplers, roles))
    ordered = sorted(graph, key=node_id_key)
    # Nearest to the first sampler wins (the base model, not a refiner's), else lowest id.
    candidates = [*upstream(graph, primary), *ordered] if primary else ordered
    latent = _first(
        candidates, lambda node_id: bool(_EMPTY_LATENT.search(class_of(graph, node_id)))
    )
    if latent is not None:
        for key in ("width", "height", "batch_size"):
            points[key] = _literal(graph, latent, (key,), kind=_NUMBER)
    elif primary is not None:
        # A loader making the empty latent itself (Efficient Loader's empty_latent_width).
        maker = source_of(graph, primary, "latent_image")
        for key in ("width", "height", "batch_size"):
            names = (f"empty_latent_{key}", key)
            points[key] = _literal(graph, maker[0], names, kind=_NUMBER) if maker else ()
    checkpoints = (_literal(graph, node_id, ("ckpt_name",), kind=str) for node_id in candidates)
    points["checkpoint"] = next((found for found in checkpoints if found), ())
    points["image"] = tuple(
        PatchPoint(node_id, "image")
        for node_id in ordered
        if class_of(graph, node_id) in _IMAGE_LOADERS and "image" in inputs_of(graph, node_id)
    )
    return points


def find_samplers(graph: Mapping[str, Any], roles: Roles | None = None) -> list[str]:
    """Return the samplers, the first one fed by no other sampler first, then by node id.

    A sampler is a core one or any node with a seed beside conditioning links (custom ones,
    such as XLabs' with `conditioning`/`neg_conditioning`, are known by their inputs).
    """
    roles = roles or Roles()
    samplers = sorted(
        (node_id for node_id in graph if roles.is_sampler(graph, node_id, SAMPLERS)),
        key=node_id_key,
    )
    first = [s for s in samplers if not any(u in samplers for u in upstream(graph, s))]
    return first + [s for s in samplers if s not in first]


def _seed_points(
    graph: Mapping[str, Any], samplers: Iterable[str], roles: Roles
) -> tuple[PatchPoint, ...]:
    """Return every sampler's seed that adds noise (a refiner's disabled one is left alone)."""
    found: list[PatchPoint] = []
    for sampler in samplers:
        inputs = inputs_of(graph, sampler)
        if inputs.get("add_noise") in _NO_NOISE:
            continue
        names = tuple(roles.seed_inputs(graph, sampler))
        noise = source_of(graph, sampler, "noise")
        points = _literal(graph, sampler, names, kind=int)
        if not points and noise is not None:
            points = _literal(graph, noise[0], ("noise_seed", "seed"), kind=int)
        found.extend(point for point in points if point not in found)
    return tuple(found)


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
