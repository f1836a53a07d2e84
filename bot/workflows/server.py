"""Fetch what converting UI-format workflows needs from a reachable ComfyUI: its /object_info."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from pathlib import Path

from bot.comfy.client import ComfyClient
from bot.comfy.errors import ComfyError
from bot.workflows.ui import UiConverter, is_ui_format

log = logging.getLogger(__name__)


def has_ui_files(directory: Path) -> bool:
    """Tell whether any `*.json` of `directory` is a UI-format workflow (blocking I/O)."""
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else ():
        try:
            if is_ui_format(json.loads(path.read_text(encoding="utf-8-sig"))):
                return True
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue  # the library reports this file's own error
    return False


async def fetch_converter(urls: Sequence[str], *, request_timeout: float) -> UiConverter | None:
    """Return a converter with the /object_info of the first server that answers, else None."""
    for url in urls:
        async with ComfyClient(url, timeout=request_timeout) as client:
            try:
                return UiConverter(await client.object_info())
            except ComfyError as exc:
                log.warning("no /object_info from %s to convert UI-format workflows: %s", url, exc)
    return None


async def converter_if_needed(
    directory: Path, urls: Sequence[str], *, request_timeout: float
) -> UiConverter | None:
    """Return a converter when `directory` holds UI-format files and a server answers."""
    if not await asyncio.to_thread(has_ui_files, directory):
        return None
    return await fetch_converter(urls, request_timeout=request_timeout)
