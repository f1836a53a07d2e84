"""The bot's ops port: GET /health (gateway connected, servers up) and GET /metrics."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from bot.config import ConfigError
from bot.jobs.logcontext import server_name
from bot.jobs.queue import JobQueue
from bot.ops.metrics import Metrics

log = logging.getLogger(__name__)

HealthCheck = Callable[[], dict[str, Any]]
"""Return the health report; its "status" is "ok" when the process does its job."""


def bot_health(queue: JobQueue, is_gateway_connected: Callable[[], bool]) -> HealthCheck:
    """Return the bot's health check: ok while the gateway is connected and a server is up."""

    def check() -> dict[str, Any]:
        servers = [
            {
                "server": server_name(backend.url),
                "up": backend.is_healthy,
                "version": backend.health.version,
                "in_flight": backend.in_flight,
            }
            for backend in queue.backends
        ]
        gateway = is_gateway_connected()
        is_ok = gateway and any(server["up"] for server in servers)
        return {
            "status": "ok" if is_ok else "degraded",
            "gateway_connected": gateway,
            "servers": servers,
            "waiting": queue.waiting_count(),
        }

    return check


def metrics_response(metrics: Metrics) -> web.Response:
    """Return a scrape of `metrics` as an HTTP answer."""
    return web.Response(body=metrics.scrape(), headers={"Content-Type": CONTENT_TYPE_LATEST})


class OpsServer:
    """Serve /health and /metrics on one port; /metrics asks for the token when one is set."""

    def __init__(
        self, metrics: Metrics, health: HealthCheck, *, host: str, port: int, token: str = ""
    ) -> None:
        self.host = host
        self.port = port
        self._metrics = metrics
        self._health = health
        self._token = token
        app = web.Application()
        app.router.add_get("/health", self._get_health)
        app.router.add_get("/metrics", self._get_metrics)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None)

    def __repr__(self) -> str:
        return f"OpsServer({self.host}:{self.port}, token={'yes' if self._token else 'no'})"

    async def __aenter__(self) -> Self:
        """Start listening.

        Raises:
            ConfigError: the port cannot be listened on (in use, not allowed).
        """
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            raise ConfigError(
                [f"METRICS_PORT: cannot listen on {self.host}:{self.port}: {exc.strerror or exc}"]
            ) from None
        self.port = self._runner.addresses[0][1]
        log.info("metrics and health on http://%s:%s", self.host, self.port)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._runner.cleanup()

    async def _get_health(self, request: web.Request) -> web.Response:
        body = self._health()
        return web.json_response(body, status=200 if body["status"] == "ok" else 503)

    async def _get_metrics(self, request: web.Request) -> web.Response:
        if self._token:
            sent = request.headers.get("Authorization", "")
            if not hmac.compare_digest(sent.encode(), f"Bearer {self._token}".encode()):
                return web.json_response(
                    {"error": "unauthorized", "message": "Send 'Authorization: Bearer <token>'."},
                    status=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
        return metrics_response(self._metrics)
