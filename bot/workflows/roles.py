"""Which inputs of a node play which part: by name always, by the server's types where known.

Core nodes and most custom packs name their inputs alike (`positive`, `seed`, `text`), so names
alone read an API file with no server at hand. Given /object_info, an input is also known by its
type: a CONDITIONING input is conditioning, a multiline STRING of a node taking CLIP is prompt
text, an INT with `control_after_generate` is a seed, whatever the pack called them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from bot.workflows.graph import class_of, inputs_of, is_link

# Text widgets of the encoders (CLIPTextEncode, ...SDXL text_g/text_l, ...Flux clip_l/t5xxl,
# ...SD3 clip_g/clip_l/t5xxl, HiDream llama, Qwen and Wan `prompt`).
_TEXT_INPUT = re.compile(
    r"^(text|text_[gl]|clip_[gl]|t5xxl|umt5xxl|llama|prompt|.*_text|.*_prompt)$"
)
_SEED_INPUT = re.compile(r"(^|_)seed$")
_CONDITIONING_INPUT = re.compile(r"^(positive|negative|cond|conditioning)")
# Sampler and guider inputs carrying each side (core names and XLabs' `neg_conditioning`).
POSITIVE_INPUTS = ("positive", "conditioning", "cond1", "cond2")
NEGATIVE_INPUTS = ("negative", "neg_conditioning", "uncond")
_NEGATIVE_NAME = re.compile(r"^(neg|uncond)")
_SIDE_KINDS = frozenset({"CONDITIONING", "GUIDER"})


class Roles:
    """Answers, per node of a graph, which of its inputs are text, seeds and conditioning."""

    def __init__(self, object_info: Mapping[str, Any] | None = None) -> None:
        self._info = object_info or {}

    def _kinds(self, class_type: str) -> dict[str, tuple[str, Mapping[str, Any]]]:
        spec = self._info.get(class_type)
        specs = spec.get("input") if isinstance(spec, Mapping) else None
        kinds: dict[str, tuple[str, Mapping[str, Any]]] = {}
        for section in ("required", "optional"):
            entries = specs.get(section) if isinstance(specs, Mapping) else None
            for name, entry in (entries or {}).items():
                if isinstance(entry, list) and entry:
                    options = entry[1] if len(entry) > 1 and isinstance(entry[1], Mapping) else {}
                    kinds[name] = (
                        "COMBO" if isinstance(entry[0], list) else str(entry[0]),
                        options,
                    )
        return kinds

    def _typed(self, graph: Mapping[str, Any], node_id: str, kinds: frozenset[str]) -> list[str]:
        known = self._kinds(class_of(graph, node_id))
        return [name for name in inputs_of(graph, node_id) if known.get(name, ("",))[0] in kinds]

    def text_inputs(self, graph: Mapping[str, Any], node_id: str) -> list[str]:
        """Return an encoder's prompt text inputs (none for a node that is not an encoder)."""
        inputs = inputs_of(graph, node_id)
        known = self._kinds(class_of(graph, node_id))
        named = [name for name in inputs if _TEXT_INPUT.match(name)]
        typed = [
            name
            for name, (kind, options) in known.items()
            if name in inputs and kind == "STRING" and options.get("multiline")
        ]
        takes_clip = "clip" in inputs or any(kind == "CLIP" for kind, _ in known.values())
        if not (takes_clip or "TextEncode" in class_of(graph, node_id)):
            return []
        return [name for name in inputs if name in named or name in typed]

    def seed_inputs(self, graph: Mapping[str, Any], node_id: str) -> list[str]:
        """Return the seed inputs of a node: named like one, or an INT the server randomises."""
        known = self._kinds(class_of(graph, node_id))
        return [
            name
            for name in inputs_of(graph, node_id)
            if _SEED_INPUT.search(name)
            or (known.get(name, ("",))[0] == "INT" and known[name][1].get("control_after_generate"))
        ]

    def sides(self, graph: Mapping[str, Any], node_id: str) -> tuple[list[str], list[str]]:
        """Return a sampler's or guider's linked (positive, negative) conditioning inputs."""
        inputs = inputs_of(graph, node_id)
        typed = self._typed(graph, node_id, _SIDE_KINDS - {"GUIDER"})
        negative = [n for n in (*NEGATIVE_INPUTS, *typed) if _NEGATIVE_NAME.match(n)]
        positive = [n for n in (*POSITIVE_INPUTS, *typed) if n not in negative]
        return (
            [n for n in dict.fromkeys(positive) if is_link(inputs.get(n))],
            [n for n in dict.fromkeys(negative) if is_link(inputs.get(n))],
        )

    def guider_input(self, graph: Mapping[str, Any], node_id: str) -> str | None:
        """Return the input a sampler takes its guider through (SamplerCustomAdvanced)."""
        names = ["guider", *self._typed(graph, node_id, frozenset({"GUIDER"}))]
        return next((n for n in names if is_link(inputs_of(graph, node_id).get(n))), None)

    def conditioning_inputs(self, graph: Mapping[str, Any], node_id: str) -> list[str]:
        """Return the linked conditioning inputs of a node between encoders and samplers."""
        inputs = inputs_of(graph, node_id)
        typed = self._typed(graph, node_id, frozenset({"CONDITIONING"}))
        return [
            name
            for name, value in inputs.items()
            if is_link(value) and (_CONDITIONING_INPUT.match(name) or name in typed)
        ]

    def is_sampler(self, graph: Mapping[str, Any], node_id: str, core: frozenset[str]) -> bool:
        """Tell whether a node samples: a core sampler, or seeds beside conditioning links."""
        if class_of(graph, node_id) in core:
            return True
        positive, negative = self.sides(graph, node_id)
        has_side = bool(positive or negative or self.guider_input(graph, node_id))
        return has_side and bool(self.seed_inputs(graph, node_id))
