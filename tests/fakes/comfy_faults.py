"""Fault switches of the fake ComfyUI that need state of their own (strange HTTP answers)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from aiohttp import web

Strange = Literal["html", "json"]


@dataclass(slots=True)
class StrangeAnswers:
    """What `answer_strangely` asked for; `count` runs down with each strange answer."""

    kind: Strange
    paths: tuple[str, ...]
    count: int | None

    def applies(self, path: str) -> bool:
        """Tell whether this request gets a strange answer (and count it)."""
        if (self.paths and path not in self.paths) or self.count == 0:
            return False
        if self.count is not None:
            self.count -= 1
        return True

    def answer(self) -> web.Response:
        """Answer as something in front of ComfyUI might."""
        if self.kind == "html":
            page = "<html><body>502 Bad Gateway</body></html>"
            return web.Response(text=page, content_type="text/html")
        return web.json_response({})
