"""/generate's iterating options and prompt flags, merged into the values of one request.

Flags in the prompt (`--ar 16:9 --no text`) work in the slash command and in a chat mention;
an option given explicitly wins over the same flag.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.errors import BotError
from bot.jobs.aspect import ASPECTS
from bot.jobs.catalog import ModelCatalog
from bot.jobs.flags import parse_flags
from bot.jobs.preferences import MemberDefaults
from bot.workflows.choices import fuzzy_choices
from bot.workflows.library import Workflow, WorkflowLibrary
from bot.workflows.loras import model_slot

OPTION_HELP = {
    "count": "How many images (1-4): one grid with U and V buttons",
    "aspect": "Aspect ratio, sized for the model (also: --ar 16:9 in the prompt)",
    "model": "The model (checkpoint, or UNET) to draw with",
    "lora": "A LoRA to apply",
    "lora_strength": "How strongly the LoRA applies (default 1.0)",
}
"""Descriptions of the options this module adds to /generate."""

ASPECT_CHOICES = ASPECTS


def request_values(workflow: Workflow, text: str, **options: Any) -> dict[str, Any]:
    """Return the request values of a prompt with flags and the explicit `options`.

    `--no` terms go after the given negative, or after the workflow's default negative.

    Raises:
        BadFlag: a flag is unknown, repeated, empty or out of range.
    """
    flags = parse_flags(text)
    given = {key: value for key, value in options.items() if value is not None}
    values: dict[str, Any] = {
        "prompt": flags.prompt,
        "aspect": flags.aspect,
        "seed": flags.seed,
        "steps": flags.steps,
        "count": flags.count,
    }
    values = {key: value for key, value in values.items() if value is not None} | given
    if flags.no:
        negative = given.get("negative") or _default_negative(workflow.defaults)
        values["negative"] = _joined(negative, flags.no)
    return values


def _joined(negative: str, avoid: str) -> str:
    """Return the negative with the `--no` terms it does not already hold appended."""
    held = {term.strip().casefold() for term in negative.split(",")}
    added = [term for term in avoid.split(", ") if term.casefold() not in held]
    return ", ".join(part for part in (negative.strip(), *added) if part)


def with_defaults(
    workflow: Workflow, values: dict[str, Any], mine: MemberDefaults
) -> dict[str, Any]:
    """Return `values` with the member's /settings where the request did not say.

    A default aspect applies only to workflows that have a size to set.
    """
    chosen = dict(values)
    if mine.count is not None:
        chosen.setdefault("count", mine.count)
    sized = workflow.has("width") and workflow.has("height")
    if mine.aspect is not None and sized and not {"width", "height"} & chosen.keys():
        chosen.setdefault("aspect", mine.aspect)
    return chosen


def _default_negative(defaults: Mapping[str, Any]) -> str:
    value = defaults.get("negative")
    return value if isinstance(value, str) else ""


async def file_choices(
    library: WorkflowLibrary,
    workflow: str,
    option: str,
    typed: str,
    catalog: ModelCatalog | None = None,
) -> list[str]:
    """Return up to 25 model or LoRA files for `workflow` matching `typed`, as its sidecar allows.

    `option` is "model" (the checkpoint, or the UNET of a Flux-style graph) or "lora".
    """
    try:
        chosen = (
            library.get(workflow)
            if workflow in library
            else next(w for w in library if w.display_name.casefold() == workflow.casefold())
        )
    except (BotError, StopIteration):
        return []
    if option == "model":
        slot = model_slot(chosen.graph)
        if slot is None:
            return []
        kind = slot.kind
    else:
        kind = "lora"
    names = await catalog.names(kind) if catalog is not None else []
    return fuzzy_choices(names, typed, allow=chosen.allow.get(option, ()))
