"""Subscription: a consumer's queue that never blocks the producer and keeps one preview."""

import asyncio

from bot.comfy.events import Event, Preview, Status
from bot.comfy.subscription import Subscription


def preview(data: bytes) -> Preview:
    return Preview("p", "2", "image/jpeg", data)


async def test_a_newer_preview_replaces_an_unread_one_and_other_events_keep_their_order() -> None:
    sub: Subscription[Event] = Subscription()
    sub.put(Status(3, None))
    sub.put(preview(b"old"))
    sub.put(Status(2, None))
    sub.put(preview(b"new"))
    sub.close()
    assert [item async for item in sub] == [Status(3, None), Status(2, None), preview(b"new")]


async def test_close_wakes_a_waiting_consumer_and_tells_the_owner() -> None:
    closed: list[Subscription[Event]] = []
    sub: Subscription[Event] = Subscription(closed.append)
    waiting = asyncio.create_task(sub.receive())
    await asyncio.sleep(0)  # one loop turn: the consumer is now waiting
    assert not waiting.done()
    sub.close()
    sub.close()  # a second close does nothing
    async with asyncio.timeout(2):
        assert await waiting is None
    assert closed == [sub]
    sub.put(Status(1, None))
    assert sub.get_nowait() is None  # nothing is taken after closing
