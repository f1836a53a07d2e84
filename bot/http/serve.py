"""`comfycord serve`: the HTTP middleware (the seed's "continuous mode") on the shared JobQueue.

Exit codes: 0 stopped cleanly; 1 could not listen; 2 bad settings or a workflow that cannot
run on the server; 3 ComfyUI unreachable.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from dataclasses import replace
from pathlib import Path

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Middleware

from bot.comfy.client import ComfyClient
from bot.config import Settings
from bot.errors import EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE, user_message
from bot.http.errors import auth_middleware, error_middleware
from bot.http.guard import browser_guard
from bot.http.routes import METRICS, OPEN_PATHS, ROUTES, STATE
from bot.http.runner import JsonErrorRunner
from bot.http.service import HttpOptions, ServerState
from bot.http.startup import check_servers, load_served
from bot.jobs.engine import Engine
from bot.jobs.queue import JobQueue
from bot.ops.metrics import Metrics
from bot.workflows.library import Workflow, WorkflowError
from bot.workflows.server import converter_if_needed

__all__ = ["EXIT_UNREACHABLE", "HttpOptions", "add_arguments", "create_app", "main"]

log = logging.getLogger(__name__)

EXIT_LISTEN = 1


def create_app(
    jobs: JobQueue,
    workflow: Workflow,
    options: HttpOptions | None = None,
    *,
    metrics: Metrics | None = None,
) -> web.Application:
    """Return the middleware's app around an open JobQueue; the caller owns the queue.

    The app owns its per-server state (what clients set, the jobs it queued) and the tasks
    following those jobs; it stops them on cleanup. `metrics` (the app's own when not given)
    follow the queue's jobs and answer /metrics.
    """
    options = options or HttpOptions()
    middlewares: list[Middleware] = [
        error_middleware,
        # A token is what a page of another site cannot send, so it makes the Host check moot.
        browser_guard(options.allowed_hosts, check_host=not options.token),
    ]
    if options.token:
        middlewares.append(auth_middleware(options.token, OPEN_PATHS))
    app = web.Application(client_max_size=options.max_body_bytes, middlewares=middlewares)
    app[STATE] = ServerState(jobs, workflow, options)
    if metrics is None:
        metrics = Metrics("http")
        app.on_cleanup.append(lambda _: metrics.close())
    metrics.watch(jobs)
    app[METRICS] = metrics
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, handler)
    app.on_shutdown.append(_end_streams)
    app.on_cleanup.append(_stop_following)
    return app


async def _end_streams(app: web.Application) -> None:
    app[STATE].board.close_listeners()


async def _stop_following(app: web.Application) -> None:
    await app[STATE].board.close()


def _port(raw: str) -> int:
    value = int(raw)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port between 1 and 65535, not {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the server's arguments (each defaults to its HTTP_* setting)."""
    parser.add_argument("--host", help="address to listen on (default HTTP_HOST, 127.0.0.1)")
    parser.add_argument("--port", type=_port, help="port to listen on (default HTTP_PORT, 8189)")
    parser.add_argument(
        "--workflow", help="workflow name in WORKFLOWS_DIR, or a file (default HTTP_WORKFLOW)"
    )
    parser.add_argument(
        "--auto-execute",
        action="store_true",
        default=None,
        help="queue a run on every image upload (default AUTO_EXECUTE_ON_UPLOAD)",
    )


async def main(args: argparse.Namespace, settings: Settings) -> int:
    """Check ComfyUI and the workflow, then serve until SIGINT or SIGTERM.

    Raises:
        ConfigError: listening beyond loopback without HTTP_API_TOKEN (reported by the CLI).
    """
    settings = replace(
        settings,
        http_host=args.host or settings.http_host,
        http_port=args.port or settings.http_port,
        http_workflow=args.workflow or settings.http_workflow,
        auto_execute_on_upload=args.auto_execute or settings.auto_execute_on_upload,
    )
    settings.require_http_token()
    converter = await converter_if_needed(
        [settings.workflows_dir, Path(settings.http_workflow)],
        settings.backend_urls,
        request_timeout=settings.request_timeout,
    )
    try:
        library, workflow = await asyncio.to_thread(load_served, settings, converter)
    except WorkflowError as exc:
        log.error("Cannot serve workflow %r: %s", settings.http_workflow, user_message(exc))
        return EXIT_USAGE
    async with (
        Metrics("http") as metrics,
        aiohttp.ClientSession(trace_configs=[metrics.comfy_trace()]) as http,
    ):
        clients = [
            ComfyClient(url, session=http, timeout=settings.request_timeout)
            for url in settings.backend_urls
        ]
        code = await check_servers(clients, workflow)
        if code != EXIT_OK:
            return code
        async with Engine(settings, library, session=http) as engine:
            if (silent := await engine.wait_connected(settings.request_timeout)) is not None:
                log.error(
                    "ComfyUI at %s answers HTTP, but its WebSocket did not open within %.0fs.",
                    silent.url,
                    settings.request_timeout,
                )
                return EXIT_UNREACHABLE
            options = HttpOptions.from_settings(settings)
            app = create_app(engine.jobs, workflow, options, metrics=metrics)
            return await serve(app, settings.http_host, settings.http_port)


async def serve(app: web.Application, host: str, port: int) -> int:
    """Serve `app` on host:port until SIGINT or SIGTERM, then shut down cleanly."""
    runner = JsonErrorRunner(app, handle_signals=False, shutdown_timeout=5.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            log.error("Cannot listen on %s:%s: %s", host, port, exc.strerror or exc)
            return EXIT_LISTEN
        state = app[STATE]
        log.info(
            "Serving workflow %r on http://%s:%s (token %s); Ctrl+C stops",
            state.patch.workflow.name,
            host,
            port,
            "required" if state.options.token else "not required",
        )
        await _wait_for_signal()
        log.info("Stopping: closing event streams and connections")
    finally:
        await runner.cleanup()
    return EXIT_OK


async def _wait_for_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        # Only the main thread of a Unix process can take signals this way.
        with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in signals:
            with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
                loop.remove_signal_handler(sig)
