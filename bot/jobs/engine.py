"""Engine: the core every front door runs on, opened from Settings and closed in reverse order."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Self

import aiohttp

from bot.comfy.backend import ComfyBackend
from bot.comfy.client import ComfyClient
from bot.comfy.stream import Backoff
from bot.config import ConfigError, Settings
from bot.jobs.journal import Journal
from bot.jobs.queue import JobQueue
from bot.jobs.retention import Retention
from bot.jobs.store import JobStore
from bot.workflows.library import WorkflowLibrary


class Engine:
    """Open the journal (if asked), one backend per ComfyUI server and the job queue.

    Whoever opens the Engine owns all of it; a session passed in stays the caller's.
    """

    def __init__(
        self,
        settings: Settings,
        workflows: WorkflowLibrary,
        *,
        has_journal: bool = False,
        urls: Sequence[str] | None = None,
        session: aiohttp.ClientSession | None = None,
        backoff: Backoff | None = None,
        check_interval: float = 5.0,
        max_per_user: int | None = None,
        max_waiting: int = 1000,
    ) -> None:
        self.settings = settings
        self.workflows = workflows
        self.has_journal = has_journal
        self.urls = tuple(urls or settings.backend_urls)
        self.max_per_user = settings.max_jobs_per_user if max_per_user is None else max_per_user
        self.max_waiting = max_waiting
        self._session = session
        self._backoff = backoff
        self._check_interval = check_interval
        self._stack: AsyncExitStack | None = None
        self._jobs: JobQueue | None = None

    def __repr__(self) -> str:
        return f"Engine(servers={len(self.urls)}, journal={self.has_journal}, jobs={self._jobs!r})"

    @property
    def jobs(self) -> JobQueue:
        """Return the open job queue.

        Raises:
            RuntimeError: the Engine is not open.
        """
        if self._jobs is None:
            raise RuntimeError("the Engine is not open")
        return self._jobs

    @property
    def backends(self) -> tuple[ComfyBackend, ...]:
        """Return the open backends, in the order of the settings' servers."""
        return self.jobs.backends

    async def __aenter__(self) -> Self:
        async with AsyncExitStack() as stack:
            self._jobs = await self._open(stack)
            self._stack = stack.pop_all()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack, self._stack, self._jobs = self._stack, None, None
        if stack is not None:
            await stack.aclose()

    async def _open(self, stack: AsyncExitStack) -> JobQueue:
        journal = None
        store = None
        if self.has_journal:
            store = await stack.enter_async_context(_opened_store(self.settings))
            retention = Retention.from_settings(
                self.settings.journal_retention_days, self.settings.journal_image_retention_hours
            )
            journal = await stack.enter_async_context(Journal(store, retention=retention))
        session = self._session or await stack.enter_async_context(aiohttp.ClientSession())
        backends = []
        for url in self.urls:
            # The same client_id across restarts: ComfyUI keeps sending events of earlier prompts.
            client_id = await store.client_id(url) if store is not None else None
            client = ComfyClient(
                url,
                session=session,
                client_id=client_id,
                timeout=self.settings.request_timeout,
                preview_method=self.settings.preview_method,
            )
            backend = ComfyBackend(
                client, backoff=self._backoff, check_interval=self._check_interval
            )
            backends.append(await stack.enter_async_context(backend))
        queue = JobQueue(
            backends,
            self.workflows,
            max_per_user=self.max_per_user,
            max_in_flight=self.settings.max_in_flight_per_backend,
            max_waiting=self.max_waiting,
            journal=journal,
        )
        return await stack.enter_async_context(queue)

    async def wait_connected(self, seconds: float) -> ComfyBackend | None:
        """Wait until every backend's WebSocket is open and checked; return one that is not."""
        for backend in self.backends:
            try:
                async with asyncio.timeout(seconds):
                    await backend.stream.wait_connected()
            except TimeoutError:
                return backend
            await backend.check()  # healthy from the start, not only after the first check round
        return None


@contextlib.asynccontextmanager
async def _opened_store(settings: Settings) -> AsyncIterator[JobStore]:
    """Open the journal's database.

    Raises:
        ConfigError: the file cannot be opened or created.
    """
    store = JobStore(settings.database_path)
    try:
        await store.open()
    except sqlite3.Error as exc:
        await store.close()
        path = str(settings.database_path)
        raise ConfigError([f"DATABASE_PATH: cannot open {path!r}: {exc}"]) from None
    try:
        yield store
    finally:
        await store.close()
