"""persist: a Discord call that must reach the member, tried again while Discord is overloaded."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import discord

log = logging.getLogger(__name__)

PERSIST_ATTEMPTS = 8
PERSIST_BACKOFF = 0.5  # seconds before the second attempt, doubled up to the limit
PERSIST_BACKOFF_LIMIT = 30.0
END_ATTEMPTS = 25  # about ten minutes: the first eight take one, then one every 30 s
T = TypeVar("T")


async def persist(
    action: Callable[[], Awaitable[T]], what: str, *, attempts: int = PERSIST_ATTEMPTS
) -> T:
    """Run a Discord call, trying again while Discord is overloaded (429 or 5xx).

    discord.py gives up after five 429s or 5xx in a row, which a rate-limit storm reaches;
    what must reach the member (a reply, a refusal) is tried 8 times over about a minute, a
    job's end `END_ATTEMPTS` times over about ten (its images exist: only a lasting refusal
    may leave them unposted).

    Raises:
        discord.HTTPException: any other error, or the last one.
    """
    for attempt in range(attempts - 1):
        try:
            return await action()
        except discord.HTTPException as exc:
            if not (exc.status == 429 or exc.status >= 500):
                raise
            log.warning("%s: %s; trying again", what, exc)
        await asyncio.sleep(min(PERSIST_BACKOFF * 2**attempt, PERSIST_BACKOFF_LIMIT))
    return await action()
