"""Transport: HTTP requests to one ComfyUI server, each with a timeout and one failure mapping."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import aiohttp
from yarl import URL

from bot.comfy.errors import ComfyHTTPError, ComfyUnavailable
from bot.comfy.shapes import decode
from bot.comfy.urls import redact


class Transport:
    """Send requests below a base URL; close the aiohttp session only if this created it."""

    def __init__(
        self,
        base_url: URL,
        *,
        shown_url: str,
        session: aiohttp.ClientSession | None,
        timeout: float,
    ) -> None:
        self.base_url = base_url
        self.shown_url = shown_url
        self._session = session
        self._owns_session = session is None
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    def __repr__(self) -> str:
        return f"Transport({self.shown_url!r})"

    async def close(self) -> None:
        """Close the HTTP session if this transport created it."""
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def request(
        self, method: str, path: str, *, ok: Iterable[int] = (200,), **kwargs: Any
    ) -> tuple[int, bytes]:
        """Send one request; return the status and body of an answer whose status is `ok`.

        Raises:
            ComfyUnavailable: no answer (refused, timed out, the connection broke).
            ComfyHTTPError: an answer with another status.
        """
        url = self.base_url.with_path(self.base_url.path.rstrip("/") + path)
        try:
            async with self._http().request(method, url, timeout=self._timeout, **kwargs) as resp:
                body = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            reason = (
                "timed out" if isinstance(exc, TimeoutError) else str(exc) or type(exc).__name__
            )
            raise ComfyUnavailable(
                f"ComfyUI at {self.shown_url} is unreachable: {redact(reason)}",
                reason=redact(reason),
            ) from exc
        if status not in ok:
            raise ComfyHTTPError(method, path, status, body.decode("utf-8", "replace"))
        return status, body

    async def json(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send one request and return its JSON answer.

        Raises:
            ProtocolError: the answer is not JSON (besides the errors of `request`).
        """
        _, body = await self.request(method, path, **kwargs)
        return decode(body, path)
