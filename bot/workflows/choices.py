"""Model and LoRA names members may pick: ComfyUI's combo lists, allow patterns, fuzzy matching.

An admin decides what members may choose with glob patterns in the workflow's sidecar
(`[allow] lora = ["style/*"]`); members type a few letters and see at most 25 names, best first.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

AUTOCOMPLETE_LIMIT = 25  # Discord shows at most 25 choices
# (node class, input) whose combo list names the files of each kind, in order of preference.
SOURCES: Mapping[str, tuple[tuple[str, str], ...]] = {
    "checkpoint": (("CheckpointLoaderSimple", "ckpt_name"),),
    "unet": (("UNETLoader", "unet_name"),),
    "lora": (("LoraLoader", "lora_name"), ("LoraLoaderModelOnly", "lora_name")),
}


def combo_options(object_info: Mapping[str, Any], class_type: str, input_name: str) -> list[str]:
    """Return the choices of one combo input in an /object_info answer ([] if it has none).

    Both shapes are read: `[[choice, ...], {...}]` (0.3.x) and `["COMBO", {"options": [...]}]`.
    """
    node = object_info.get(class_type)
    inputs = node.get("input") if isinstance(node, Mapping) else None
    if not isinstance(inputs, Mapping):
        return []
    for section in ("required", "optional"):
        spec = inputs.get(section, {}).get(input_name) if isinstance(inputs, Mapping) else None
        if not isinstance(spec, list) or not spec:
            continue
        choices = spec[0]
        if choices == "COMBO" and len(spec) > 1 and isinstance(spec[1], Mapping):
            choices = spec[1].get("options")
        if isinstance(choices, list):
            return [choice for choice in choices if isinstance(choice, str)]
    return []


def files_of(object_info: Mapping[str, Any], kind: str) -> list[str]:
    """Return the file names of one kind (checkpoint, unet, lora) a server offers."""
    names: list[str] = []
    for class_type, input_name in SOURCES[kind]:
        names += [n for n in combo_options(object_info, class_type, input_name) if n not in names]
    return names


def is_allowed(name: str, patterns: Sequence[str]) -> bool:
    """Tell whether `name` matches one of the glob patterns (no patterns allow everything)."""
    if not patterns:
        return True
    folded = name.casefold().replace("\\", "/")
    return any(fnmatch.fnmatchcase(folded, pattern.casefold()) for pattern in patterns)


def fuzzy_choices(
    names: Iterable[str],
    typed: str,
    *,
    allow: Sequence[str] = (),
    limit: int = AUTOCOMPLETE_LIMIT,
) -> list[str]:
    """Return the allowed names matching what was typed, best first, at most `limit`.

    A name matches when the typed letters appear in it in order (`xlbase` finds
    `sd_xl_base_1.0.safetensors`); names that start with the text come first, then names that
    contain it, then the rest by how tightly the letters sit together (letters spread wider
    than about twice the typed length are no match).
    """
    needle = "".join(typed.casefold().split())
    ranked: list[tuple[tuple[int, int, int, str], str]] = []
    for name in dict.fromkeys(names):
        if not is_allowed(name, allow):
            continue
        score = _score(name.casefold(), needle)
        if score is not None:
            ranked.append(((*score, name.casefold()), name))
    ranked.sort()
    return [name for _, name in ranked[:limit]]


def _score(name: str, needle: str) -> tuple[int, int, int] | None:
    """Rank a match: (kind, spread of the letters, length); None when the letters are not there."""
    if not needle:
        return (0, 0, 0)
    stem = name.rsplit("/", 1)[-1]
    if stem.startswith(needle) or name.startswith(needle):
        return (0, 0, len(name))
    if needle in name:
        return (1, name.index(needle), len(name))
    position, first = -1, -1
    for letter in needle:
        position = name.find(letter, position + 1)
        if position < 0:
            return None
        first = position if first < 0 else first
    spread = position - first
    # Letters strewn over a long name are chance, not a match.
    return (2, spread, len(name)) if spread <= 2 * len(needle) + 2 else None
