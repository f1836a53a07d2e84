"""A request as the journal records it (JSON-safe parameters, images apart), and back."""

from __future__ import annotations

from typing import Any

from bot.images import ImageFile
from bot.jobs.model import REQUEST_CHOICES, REQUEST_VALUES, GenerationRequest
from bot.jobs.rows import JournalEntry


def request_params(request: GenerationRequest) -> dict[str, Any]:
    """Return the JSON-safe parameters of a request (images are stored apart)."""
    overrides = [[node, name, value] for (node, name), value in request.overrides.items()]
    return {
        **request.values(),
        **request.choices(),
        "overrides": overrides,
        "priority": request.priority,
    }


def request_from(entry: JournalEntry, images: tuple[ImageFile, ...]) -> GenerationRequest:
    """Rebuild the request a journal entry recorded."""
    params = dict(entry.params)
    overrides = {(str(n), str(i)): v for n, i, v in params.pop("overrides", [])}
    return GenerationRequest(
        requester=entry.requester,
        workflow=entry.workflow,
        images=images,
        overrides=overrides,
        origin=dict(entry.origin),
        priority=int(params.pop("priority", 0)),
        guild_id=entry.guild_id,
        **{key: params[key] for key in (*REQUEST_VALUES, *REQUEST_CHOICES) if key in params},
    )
