"""The recipe card (the info button): how an image was made, with the graph that ran."""

from __future__ import annotations

from bot.discord.render import (
    CONTENT_LIMIT,
    FIELD_LIMIT,
    PROMPT_PREVIEW,
    EmbedData,
    EmbedField,
    mention,
    quoted,
    truncate,
)
from bot.jobs.model import GenerationRequest
from bot.jobs.preferences import MemberDefaults
from bot.jobs.progress import duration
from bot.jobs.recipe import Recipe

COLOR_RECIPE = 0x5865F2
PROMPT_LIMIT = 1000


def recipe_embed(recipe: Recipe, *, is_one_copy: bool = False) -> EmbedData:
    """Describe a recipe: workflow, model, seed, steps, cfg, size, sampler, prompts, time."""
    fields = [EmbedField("Workflow", truncate(recipe.workflow, FIELD_LIMIT))]
    if recipe.model:
        fields.append(EmbedField("Model", truncate(recipe.model, FIELD_LIMIT)))
    for name, strength in recipe.loras:
        fields.append(EmbedField("LoRA", truncate(f"{name} @ {strength:g}", FIELD_LIMIT)))
    shown = {
        "Seed": recipe.seed,
        "Steps": recipe.steps,
        "CFG": None if recipe.cfg is None else f"{recipe.cfg:g}",
        "Denoise": None if recipe.denoise is None else f"{recipe.denoise:g}",
        "Size": None if recipe.size is None else f"{recipe.size[0]}x{recipe.size[1]}",
        "Sampler": recipe.sampler,
        "Time": None if recipe.elapsed is None else duration(recipe.elapsed),
        "Server": recipe.server,
    }
    fields += [EmbedField(name, str(value)) for name, value in shown.items() if value is not None]
    fields.append(EmbedField("Prompt", _block(recipe.prompt), inline=False))
    if recipe.negative:
        fields.append(EmbedField("Negative", _block(recipe.negative), inline=False))
    return EmbedData(
        title="\N{INFORMATION SOURCE}\ufe0f Recipe",
        description=(
            "The part of the prompt that made this image (it ran as one of several copies) is"
            if is_one_copy
            else "The graph that ran is"
        )
        + " attached as `workflow_api.json`: load it in ComfyUI to make this image again.",
        fields=tuple(fields),
        color=COLOR_RECIPE,
    )


def _block(text: str) -> str:
    if not text.strip():
        return "(none)"
    return quoted(text, PROMPT_LIMIT)


def picked_text(request: GenerationRequest, image: int, count: int, clicker: str) -> str:
    """Return the message of one image posted alone (U<n>): what it is and who picked it."""
    what = quoted(request.prompt, PROMPT_PREVIEW) if request.prompt.strip() else "Image"
    return truncate(
        f"**{what}** · image {image} of {count} · picked by {mention(clicker)}", CONTENT_LIMIT
    )


def defaults_text(defaults: MemberDefaults) -> str:
    """Return a member's /settings as a short private message."""
    shown = [
        f"Workflow: {defaults.workflow or 'the server default'}",
        f"Aspect: {defaults.aspect or 'the workflow default'}",
        f"Count: {defaults.count or 1}",
        f"Private results: {'yes' if defaults.is_private else 'no'}",
    ]
    return "Your settings for /generate:\n" + "\n".join(f"- {line}" for line in shown)
