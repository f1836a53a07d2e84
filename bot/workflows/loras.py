"""Choose the model and add a LoRA in an API graph: find the loader, splice a LoraLoader after it.

The graph is never changed in place: each function returns a new dict, so two jobs never share
one. A LoRA goes into an existing LoRA node when the workflow has one (an admin's slot, with its
wiring as designed); otherwise a LoraLoader is put between the model loader and everything that
used the loader's MODEL and CLIP outputs (LoraLoaderModelOnly for a UNET, which has no CLIP).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.workflows.errors import WorkflowInputError
from bot.workflows.graph import PatchPoint, class_of, inputs_of, is_link, node_id_key

# Loader class -> (model file input, kind of file, index of CLIP output or None).
LOADERS: Mapping[str, tuple[str, str, int | None]] = {
    "CheckpointLoaderSimple": ("ckpt_name", "checkpoint", 1),
    "CheckpointLoader": ("ckpt_name", "checkpoint", 1),
    "ImageOnlyCheckpointLoader": ("ckpt_name", "checkpoint", None),
    "UNETLoader": ("unet_name", "unet", None),
}
LORA_NODES = ("LoraLoader", "LoraLoaderModelOnly")


@dataclass(frozen=True, slots=True)
class ModelSlot:
    """Where a workflow names its model file, and which kind of file goes there."""

    point: PatchPoint
    kind: str  # "checkpoint" or "unet": which /object_info list holds its choices


def model_slot(graph: Mapping[str, Any]) -> ModelSlot | None:
    """Return the first model loader's file input (lowest node id), if the graph has one."""
    for node_id in sorted(graph, key=node_id_key):
        spec = LOADERS.get(class_of(graph, node_id))
        if spec is not None and isinstance(inputs_of(graph, node_id).get(spec[0]), str):
            return ModelSlot(PatchPoint(node_id, spec[0]), spec[1])
    return None


def with_model(graph: Mapping[str, Any], name: str) -> dict[str, Any]:
    """Return a copy of `graph` loading the model file `name`.

    Raises:
        WorkflowInputError: the graph loads no model file.
    """
    slot = model_slot(graph)
    if slot is None:
        raise WorkflowInputError("This workflow loads no model, so none can be chosen.")
    copied = copy.deepcopy(dict(graph))
    copied[slot.point.node_id]["inputs"][slot.point.input_name] = name
    return copied


def with_lora(graph: Mapping[str, Any], name: str, strength: float = 1.0) -> dict[str, Any]:
    """Return a copy of `graph` with the LoRA `name` applied at `strength` (model and CLIP).

    Raises:
        WorkflowInputError: the graph has neither a LoRA node nor a model loader to follow.
    """
    copied = copy.deepcopy(dict(graph))
    existing = [n for n in sorted(copied, key=node_id_key) if class_of(copied, n) in LORA_NODES]
    if existing:
        inputs = copied[existing[0]]["inputs"]
        inputs["lora_name"] = name
        inputs["strength_model"] = strength
        if "strength_clip" in inputs:
            inputs["strength_clip"] = strength
        return copied
    slot = model_slot(copied)
    if slot is None:
        raise WorkflowInputError("This workflow loads no model, so it cannot take a LoRA.")
    loader = slot.point.node_id
    clip_output = LOADERS[class_of(copied, loader)][2]
    lora_id = _new_id(copied)
    rewired = {(loader, 0): [lora_id, 0]}
    node: dict[str, Any]
    if clip_output is None:
        node = {"class_type": "LoraLoaderModelOnly", "inputs": {"model": [loader, 0]}}
    else:
        node = {
            "class_type": "LoraLoader",
            "inputs": {"model": [loader, 0], "clip": [loader, clip_output]},
        }
        node["inputs"]["strength_clip"] = strength
        rewired[(loader, clip_output)] = [lora_id, 1]
    _rewire(copied, rewired)
    node["inputs"] |= {"lora_name": name, "strength_model": strength}
    node["_meta"] = {"title": "LoRA (ComfyCord)"}
    copied[lora_id] = node
    return copied


def _rewire(graph: dict[str, Any], links: Mapping[tuple[str, int], list[Any]]) -> None:
    """Point every input linked to one of `links`' outputs at its replacement instead."""
    for node in graph.values():
        inputs = node.get("inputs", {})
        for input_name, value in inputs.items():
            if is_link(value) and (value[0], value[1]) in links:
                inputs[input_name] = list(links[(value[0], value[1])])


def _new_id(graph: Mapping[str, Any]) -> str:
    numbers = [int(n) for n in graph if n.isascii() and n.isdigit()]
    return str(max(numbers, default=0) + 1)
