"""Browser guards of `comfycord serve`: no cross-site requests, no DNS rebinding.

A web page the user visits can make their browser send requests to 127.0.0.1: forms and
`<img>` tags need no permission (CSRF), and a page whose name is re-pointed at 127.0.0.1 can
even read the answers (DNS rebinding). Scripts and curl send neither `Origin` nor
`Sec-Fetch-Site`, so refusing what only browsers send on behalf of other sites costs them nothing.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Collection
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Middleware

from bot.errors import BotError

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_DEFAULT_PORTS = {"http": 80, "https": 443}
# Sec-Fetch-Site values of a request the user made themselves, or a page of this server made.
_OWN_SITES = frozenset({"same-origin", "none"})


class ForbiddenRequest(BotError):
    """A browser sent the request on behalf of another site, or under a foreign host name."""


def is_loopback_host(name: str) -> bool:
    """Tell whether a host name or address is loopback, without resolving it.

    Resolving would defeat the purpose: a rebinding name resolves to 127.0.0.1 on demand.
    """
    name = name.strip("[]").lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):  # RFC 6761: always loopback
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def changes_state(request: web.Request) -> bool:
    """Tell whether a request changes anything: every non-GET, and the seed's `GET /queue`."""
    return request.method not in {"GET", "HEAD", "OPTIONS"} or request.path == "/queue"


def browser_guard(allowed_hosts: Collection[str], *, check_host: bool) -> Middleware:
    """Return the middleware refusing foreign Host names (when `check_host`) and origins."""
    # Names only: "comfy.lan:8189" in HTTP_ALLOWED_HOSTS allows the name on any port.
    allowed = frozenset(host if host == "*" else _split(host, "http")[0] for host in allowed_hosts)

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        host_header = request.headers.get("Host", "")
        host, _ = _split(host_header, "http")
        if check_host and "*" not in allowed and not (is_loopback_host(host) or host in allowed):
            raise ForbiddenRequest(
                f"This server does not answer to the host name {host or '(none)'!r}; use"
                " 127.0.0.1 or localhost, or add the name to HTTP_ALLOWED_HOSTS."
            )
        origin = request.headers.get("Origin")
        if origin is not None and not _same_origin(origin, host_header):
            raise ForbiddenRequest(
                f"Requests from pages of {origin[:100]!r} are refused: only this server's own"
                " origin, or clients that send no Origin (curl, scripts), may call it."
            )
        site = request.headers.get("Sec-Fetch-Site")
        if _is_foreign(site, request):
            raise ForbiddenRequest(
                f"A browser sent this request for another site (Sec-Fetch-Site: {site!s:.20});"
                f" {request.method} {request.path} is for curl, scripts and this server's"
                " own pages."
            )
        return await handler(request)

    return guard


def _is_foreign(site: str | None, request: web.Request) -> bool:
    """Tell whether Sec-Fetch-Site refuses the request: cross-site ever, same-site for changes."""
    if site is None or site in _OWN_SITES:
        return False
    return site == "cross-site" or changes_state(request)


def _same_origin(origin: str, host_header: str) -> bool:
    parts = urlsplit(origin.strip())
    if parts.scheme not in _DEFAULT_PORTS or not parts.netloc:
        return False  # includes "null": sandboxed frames, file:// pages, redirects
    origin_host, origin_port = _split(parts.netloc, parts.scheme)
    host, port = _split(host_header, parts.scheme)
    return bool(host) and (origin_host, origin_port) == (host, port)


def _split(netloc: str, scheme: str) -> tuple[str, int | None]:
    """Return a Host header's (or an origin's) name and port; a missing port is the default."""
    try:
        parts = urlsplit(f"//{netloc.strip()}")
        name = (parts.hostname or "").rstrip(".")
        return name, parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:  # a port that is not a number, an unbalanced bracket
        return "", None
