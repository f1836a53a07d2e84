"""Prompt ids and upload names chosen by us: canonical UUIDs, and the ids of older journals."""

from __future__ import annotations

import re
import uuid

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_LEGACY = re.compile(r"comfycord-([0-9a-f]{32})")


def new_prompt_id() -> str:
    """Return a fresh prompt id: a canonical UUID, which every ComfyUI version accepts."""
    return str(uuid.uuid4())


def is_canonical(prompt_id: str) -> bool:
    """Tell whether an id is a UUID in lowercase hyphenated form (what ComfyUI 0.38 demands)."""
    try:
        return str(uuid.UUID(prompt_id)) == prompt_id
    except ValueError:
        return False


def canonical_form(prompt_id: str) -> str:
    """Return the UUID spelling of an id; our old `comfycord-<hex>` ids keep their hex.

    Other ids map to a stable name-based UUID, so the same id always maps the same way.
    """
    if is_canonical(prompt_id):
        return prompt_id
    if (legacy := _LEGACY.fullmatch(prompt_id)) is not None:
        return str(uuid.UUID(legacy[1]))
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"comfycord:{prompt_id}"))


def unique_upload_name(filename: str) -> str:
    """Return a collision-free, path-free upload name that keeps the original extension."""
    stem, dot, ext = filename.rpartition("/")[2].rpartition("\\")[2].rpartition(".")
    if not dot:
        stem, ext = ext, "png"
    stem = _SAFE_NAME.sub("_", stem).strip("._")[:40] or "image"
    ext = _SAFE_NAME.sub("", ext)[:8].lower() or "png"
    return f"comfycord_{uuid.uuid4().hex[:16]}_{stem}.{ext}"
