"""The app runner of `comfycord serve`: requests aiohttp cannot parse get a JSON error too.

aiohttp answers a request it cannot parse (a header over 8 KB, a bad request line) before any
middleware runs, in text/plain and with a logged traceback. These classes change only that.
"""

from __future__ import annotations

import logging
from http import HTTPStatus

from aiohttp import web
from aiohttp.web_request import BaseRequest

from bot.http.errors import error_response

log = logging.getLogger(__name__)


class _JsonErrorHandler(web.RequestHandler):
    """aiohttp's connection handler, answering its own errors as JSON without a traceback."""

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:
            raise ConnectionError("the response is partly sent; no error can follow it")
        if status >= 500:
            log.error("aiohttp failed a request from %s: %r", request.remote, exc)
            text, code = "The server could not handle this request.", "internal_error"
        else:
            # Anyone can send these: one line at DEBUG, so they cannot flood the log.
            log.debug("unparsable request from %s: %s", request.remote, exc or message)
            reason = getattr(exc, "message", None) or message or HTTPStatus(status).phrase
            text, code = (
                f"The request could not be parsed: {str(reason)[:200]}",
                "malformed_request",
            )
        response = error_response(status, code, text)
        response.force_close()
        return response


class _JsonErrorServer(web.Server):
    def __call__(self) -> web.RequestHandler:
        return _JsonErrorHandler(self, loop=self._loop, **self._kwargs)


class JsonErrorRunner(web.AppRunner):
    """An AppRunner whose connections answer unparsable requests with a JSON error."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = _JsonErrorServer  # same object and state; only __call__ differs
        return server
