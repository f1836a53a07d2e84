"""TaskSet: tasks are kept until they end, failures are logged, close() cancels the rest."""

import asyncio
import logging

import pytest

from bot.tasks import TaskSet

log = logging.getLogger("tests.tasks")


async def test_a_failed_task_is_logged_and_forgotten(caplog: pytest.LogCaptureFixture) -> None:
    async def fail() -> None:
        raise RuntimeError("boom")

    tasks = TaskSet(log)
    with caplog.at_level(logging.ERROR, logger="tests.tasks"):
        task = tasks.spawn(fail(), "doomed")
        async with asyncio.timeout(2):
            await asyncio.wait({task})
    assert len(tasks) == 0
    record = caplog.records[-1]
    assert record.getMessage() == "task doomed failed"
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], RuntimeError)


async def test_close_cancels_running_tasks_and_waits_for_them() -> None:
    started, stopped = asyncio.Event(), asyncio.Event()

    async def forever() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            stopped.set()

    tasks = TaskSet(log)
    task = tasks.spawn(forever(), "forever")
    async with asyncio.timeout(2):
        await started.wait()
        await tasks.close()
    assert task.cancelled()
    assert stopped.is_set()
    assert len(tasks) == 0
