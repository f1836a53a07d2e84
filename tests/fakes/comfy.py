"""A protocol-faithful fake ComfyUI server (0.3.64 or 0.38) on 127.0.0.1, for tests and benchmarks.

It validates prompts against the recorded /object_info, runs them one at a time with ComfyUI's
node order, caching, progress, previews and WebSocket targeting, and keeps files in memory.
Its behaviour follows the recorded traces in tests/fixtures/traces (0.3.64) and, with
`version="0.38"`, what ComfyUI 0.38 changed (comfy_versions.py); the parts are comfy_*.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

from aiohttp import web

from tests.fakes.comfy_catalog import Catalog
from tests.fakes.comfy_faults import Strange, StrangeAnswers
from tests.fakes.comfy_files import FileStore
from tests.fakes.comfy_http import Api
from tests.fakes.comfy_nodes import DEFAULT_STEP_RULES, StepRule
from tests.fakes.comfy_queue import PromptQueue, RunOutcome
from tests.fakes.comfy_runner import Executor, RunSettings
from tests.fakes.comfy_script import Script
from tests.fakes.comfy_versions import rules_for
from tests.fakes.comfy_ws import Hub

log = logging.getLogger(__name__)
MAX_UPLOAD_SIZE = 104857600
PromptState = Literal["pending", "running", "done"]
_WS_PATHS = ("/ws", "/api/ws")


class FakeComfy:
    """A fake ComfyUI server: start it, point a client at `url`, script faults, inspect state."""

    def __init__(
        self,
        *,
        object_info_path: Path | None = None,
        step_delay: float = 0.01,
        models: Mapping[str, Sequence[str]] | None = None,
        fail_nodes: Iterable[str] = (),
        step_rules: Mapping[str, StepRule] | None = None,
        previews: bool = True,
        preview_size: int = 512,
        version: str = "0.3.64",
        max_upload_size: int = MAX_UPLOAD_SIZE,
        has_features: bool = True,
    ) -> None:
        # ComfyUI's --max-upload-size: the largest request body aiohttp reads (else a 413),
        # told in /features; a server without the route (has_features=False) answers 404.
        rules = rules_for(version)
        features = {**rules.features, "max_upload_size": max_upload_size} if has_features else {}
        self.rules = replace(rules, features=features)
        self.has_features = has_features
        self.max_upload_size = max_upload_size
        self.script = Script()
        self.catalog = Catalog(object_info_path, models or {})
        self.files = FileStore()
        self.fail_nodes: set[str] = set(fail_nodes)
        self.slow = 0.0
        self._strange: StrangeAnswers | None = None
        self.requests: list[tuple[str, str]] = []
        # Every interrupt: a POST /interrupt body, or {"prompt_id": id} when a jobs-API cancel
        # interrupted the running prompt; `cancels` lists the ids jobs-API cancels named.
        self._arrived = asyncio.Event()  # set by each request; waiters clear it and look again
        self.interrupts: list[dict[str, Any] | None] = []
        self.cancels: list[str] = []
        self.errors: list[BaseException] = []
        self._settings = RunSettings(
            step_delay=step_delay,
            previews=previews,
            honours_preview_method=self.rules.honours_preview_method,
            preview_size=preview_size,
            fail_nodes=self.fail_nodes,
            step_rules={**DEFAULT_STEP_RULES, **(step_rules or {})},
        )
        self._gate = asyncio.Event()
        self._gate.set()
        self._port = 0
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._fresh_state()

    def _fresh_state(self) -> None:
        self.hub = Hub(
            lambda: self.queue.info(),
            lambda sid: self.executor.reconnect_node(sid),
            self.rules.features,
        )
        self.queue = PromptQueue(self._announce_status)
        self.executor = Executor(self.catalog, self.files, self.hub, self._settings, self._gate)

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Return the base URL, e.g. "http://127.0.0.1:PORT"."""
        return f"http://127.0.0.1:{self._port}"

    @property
    def ws_url(self) -> str:
        """Return the WebSocket URL without a clientId."""
        return f"ws://127.0.0.1:{self._port}/ws"

    async def start(self) -> None:
        """Listen (on a random port the first time, on the same port after kill/restart)."""
        if self._runner is not None:
            raise RuntimeError("FakeComfy is already running")
        app = web.Application(client_max_size=self.max_upload_size, middlewares=[self._middleware])
        app.add_routes(Api(self).routes())
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", self._port, reuse_address=True).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = runner.addresses[0][1]
        self._tasks = [
            asyncio.create_task(self._work(), name="fake-comfy-runner"),
            asyncio.create_task(self.hub.publish(), name="fake-comfy-publisher"),
        ]

    async def close(self) -> None:
        """Stop everything: runner, sockets, server."""
        await self._stop()

    async def kill(self) -> None:
        """Stop like a killed process: sockets cut, queue, history and cache forgotten."""
        await self._stop()
        old_queue = self.queue
        self._fresh_state()
        self.files.clear_temp()
        old_queue.wake()  # waiters re-check against the fresh queue

    async def restart(self) -> None:
        """Kill the server and start it again on the same port."""
        await self.kill()
        await self.start()

    async def _stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.hub.drop(graceful=False)
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- fault switches ----------------------------------------------------------------------
    # `slow` (seconds added to each HTTP answer) is a plain attribute.

    def answer_strangely(
        self, kind: Strange, *, paths: Sequence[str] = (), count: int | None = None
    ) -> None:
        """Answer HTTP as a broken proxy might, without doing the request, until told otherwise.

        "html" is a 200 HTML page, "json" an empty JSON object; only `paths` (all when empty),
        only the next `count` answers (all when None).
        """
        self._strange = StrangeAnswers(kind, tuple(paths), count)

    def answer_normally(self) -> None:
        """Stop answering strangely."""
        self._strange = None

    async def drop_sockets(self, *, graceful: bool = False) -> None:
        """Cut every WebSocket (no close frame unless `graceful`); the running job goes on."""
        await self.hub.drop(graceful=graceful)

    def hold(self) -> None:
        """Pause the runner before its next node (or progress step) starts."""
        self._gate.clear()

    def release(self) -> None:
        """Let a held runner go on."""
        self._gate.set()

    @property
    def version(self) -> str:
        """Return the ComfyUI version this fake answers as ("0.3.64" or "0.38")."""
        return self.rules.name

    @property
    def step_delay(self) -> float:
        """Return the seconds each progress step (or instant node) takes."""
        return self._settings.step_delay

    @step_delay.setter
    def step_delay(self, seconds: float) -> None:
        self._settings.step_delay = seconds

    # -- introspection -----------------------------------------------------------------------

    @property
    def uploads(self) -> dict[str, bytes]:
        """Return the input folder: {"name.png" or "sub/name.png": bytes} (writable)."""
        return self.files.folders["input"]

    @property
    def outputs(self) -> dict[str, bytes]:
        """Return the output folder, as `uploads`."""
        return self.files.folders["output"]

    @property
    def history(self) -> dict[str, dict[str, Any]]:
        """Return the history as served: {prompt_id: entry}."""
        return self.queue.history

    @property
    def running(self) -> str | None:
        """Return the id of the running prompt."""
        return self.queue.running.prompt_id if self.queue.running else None

    @property
    def pending(self) -> list[str]:
        """Return pending prompt ids in run order."""
        return self.queue.pending_ids()

    def state_of(self, prompt_id: str) -> PromptState | None:
        """Return "pending", "running", "done" (in the history) or None (unknown)."""
        if prompt_id in self.pending:
            return "pending"
        if self.running == prompt_id:
            return "running"
        return "done" if prompt_id in self.history else None

    async def wait_for_prompt(
        self, prompt_id: str, state: PromptState = "running", timeout: float = 5
    ) -> None:
        """Wait until the prompt is in `state` ("running" needs `hold()` to be reliable).

        Raises:
            TimeoutError: when it does not get there within `timeout` seconds.
        """
        await self._wait_until(lambda: self.state_of(prompt_id) == state, timeout)

    async def wait_for_request(
        self, method: str, path: str, timeout: float = 5, *, count: int = 1
    ) -> None:
        """Wait until `count` `method path` requests have arrived (the last may be unanswered)."""
        async with asyncio.timeout(timeout):
            while self.requests.count((method, path)) < count:
                self._arrived.clear()
                await self._arrived.wait()

    async def wait_idle(self, timeout: float = 5) -> None:
        """Wait until nothing runs or waits, and every queued WS message was written."""
        await self._wait_until(lambda: self.running is None and not self.pending, timeout)
        await self.flush()

    async def flush(self) -> None:
        """Wait until every queued WebSocket message has been written."""
        await self.hub.flush()

    async def _wait_until(self, predicate: Callable[[], bool], timeout: float) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                await self.queue.wait_change()

    # -- internals ---------------------------------------------------------------------------

    async def handle_ws(self, request: web.Request) -> web.WebSocketResponse:
        """Serve GET /ws through the current hub."""
        return await self.hub.handle(request)

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        self.requests.append((request.method, request.path))
        self._arrived.set()
        if self.slow > 0 and request.path not in _WS_PATHS:
            await asyncio.sleep(self.slow)
        strange = self._strange
        if strange is not None and request.path not in _WS_PATHS and strange.applies(request.path):
            return strange.answer()
        scripted = self.script.take(request.method, request.path)
        if scripted is not None:
            return scripted
        return await handler(request)

    def _announce_status(self) -> None:
        self.hub.send("status", {"status": self.queue.info()}, None)

    async def _work(self) -> None:
        while True:
            item = await self.queue.get()
            try:
                outcome = await self.executor.execute(item)
            except Exception as exc:
                log.exception("fake comfy: runner crashed on %s", item.prompt_id)
                self.errors.append(exc)
                outcome = RunOutcome(False, [])
            self.queue.task_done(item, outcome)
            if item.client_id is not None:
                data = {"node": None, "prompt_id": item.prompt_id}
                self.hub.send("executing", data, item.client_id)
