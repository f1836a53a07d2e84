"""`comfycord health`: ask a running bot's /health and exit 0 when it is ok (container checks)."""

from __future__ import annotations

import argparse
import json
import sys

import aiohttp

from bot.config import Settings
from bot.errors import EXIT_OK, EXIT_USAGE

EXIT_UNHEALTHY = 1
_ANY_ADDRESS = {"", "0.0.0.0", "::"}  # noqa: S104  # listening everywhere: ask over loopback


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the health check's arguments."""
    parser.add_argument(
        "--url",
        help="health URL to ask (default: http://METRICS_HOST:METRICS_PORT/health;"
        " for `comfycord serve`, http://127.0.0.1:8189/health)",
    )
    parser.add_argument(
        "--timeout", type=float, default=5.0, help="seconds to wait for an answer (default 5)"
    )


def health_url(settings: Settings) -> str | None:
    """Return the bot's health URL from the settings, or None when METRICS_PORT is off."""
    if settings.metrics_port is None:
        return None
    host = "127.0.0.1" if settings.metrics_host in _ANY_ADDRESS else settings.metrics_host
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.metrics_port}/health"


async def main(args: argparse.Namespace, settings: Settings) -> int:
    """Print the health report; 0 when ok, 1 when degraded or unreachable, 2 with nothing to ask."""
    url = args.url or health_url(settings)
    if url is None:
        print(
            "comfycord health: set METRICS_PORT (the bot serves /health there) or give --url.",
            file=sys.stderr,
        )
        return EXIT_USAGE
    timeout = aiohttp.ClientTimeout(total=args.timeout)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(url) as answer,
        ):
            body = await answer.text()
            status = answer.status
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        print(f"unhealthy: {url} does not answer ({exc or type(exc).__name__})", file=sys.stderr)
        return EXIT_UNHEALTHY
    try:
        print(json.dumps(json.loads(body), sort_keys=True))
    except ValueError:
        print(body[:500])
    return EXIT_OK if status == 200 else EXIT_UNHEALTHY
