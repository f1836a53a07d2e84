"""Fetch what converting UI-format workflows needs from a reachable ComfyUI: its /object_info."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

from bot.comfy.client import ComfyClient
from bot.comfy.errors import ComfyError
from bot.workflows.ui import UiConverter, is_ui_format

log = logging.getLogger(__name__)


def has_ui_files(paths: Iterable[Path]) -> bool:
    """Tell whether any of `paths` (files, or folders of `*.json`) is a UI-format workflow.

    Blocking file I/O: call it through `asyncio.to_thread`.
    """
    for path in paths:
        files = sorted(path.glob("*.json")) if path.is_dir() else [path] if path.is_file() else []
        for file in files:
            try:
                if is_ui_format(json.loads(file.read_text(encoding="utf-8-sig"))):
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
            except (ComfyError, ValueError) as exc:
                log.warning("no /object_info from %s to convert UI-format workflows: %s", url, exc)
    return None


async def converter_if_needed(
    paths: Iterable[Path], urls: Sequence[str], *, request_timeout: float
) -> UiConverter | None:
    """Return a converter when `paths` hold UI-format files and a server answers.

    Without UI-format files no request is made at all.
    """
    if not await asyncio.to_thread(has_ui_files, list(paths)):
        return None
    return await fetch_converter(urls, request_timeout=request_timeout)
