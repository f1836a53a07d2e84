"""Scripted answers: make the fake answer one route strangely, as a fork or a proxy might."""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass
from typing import Any

from aiohttp import web


@dataclass(frozen=True, slots=True)
class Answer:
    """One canned answer: a status and a raw body with its content type."""

    status: int
    body: bytes
    content_type: str

    def response(self) -> web.Response:
        """Return it as an aiohttp response."""
        return web.Response(status=self.status, body=self.body, content_type=self.content_type)


class Script:
    """Canned answers by (method, path), served before the real route; each is used once."""

    def __init__(self) -> None:
        self._answers: dict[tuple[str, str], deque[Answer]] = {}
        self._always: dict[tuple[str, str], Answer] = {}

    def answer(
        self,
        method: str,
        path: str,
        *,
        status: int = 200,
        json_body: Any = None,
        text: str | None = None,
        content_type: str | None = None,
        times: int | None = 1,
    ) -> None:
        """Answer the next `times` requests to `path` so (every one when `times` is None).

        Give `json_body` for JSON, or `text` for anything else (HTML, an empty body...).
        """
        if text is None:
            body, kind = json.dumps(json_body).encode(), "application/json"
        else:
            body, kind = text.encode(), "text/html"
        answer = Answer(status, body, content_type or kind)
        key = (method.upper(), path)
        if times is None:
            self._always[key] = answer
        else:
            self._answers.setdefault(key, deque()).extend([answer] * times)

    def clear(self) -> None:
        """Answer every route normally again."""
        self._answers.clear()
        self._always.clear()

    def take(self, method: str, path: str) -> web.Response | None:
        """Return the canned answer for this request, if one is scripted."""
        key = (method, path)
        if (queued := self._answers.get(key)) and queued:
            return queued.popleft().response()
        if key in self._always:
            return self._always[key].response()
        return None
