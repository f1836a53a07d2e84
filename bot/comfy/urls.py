"""Showing a ComfyUI URL: its userinfo (`user:password@`) never reaches a log, repr or user."""

from __future__ import annotations

import re

from yarl import URL

_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/?#@\s]+@")


def shown_url(url: str | URL) -> str:
    """Return the URL to show: any `user:password@` replaced by `***@`."""
    return redact(str(url))


def redact(text: str) -> str:
    """Return `text` with the userinfo of every URL in it replaced by `***@`."""
    return _USERINFO.sub(r"\1***@", text)
