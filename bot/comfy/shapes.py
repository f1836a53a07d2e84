"""Checked reads of ComfyUI's JSON: a wrong type is a ProtocolError naming what was wrong."""

from __future__ import annotations

import json
from typing import Any

from bot.comfy.errors import ProtocolError


def decode(body: bytes, path: str) -> Any:
    """Parse a JSON body.

    Raises:
        ProtocolError: the body is not JSON (an HTML error page, a proxy's text...).
    """
    try:
        return json.loads(body)
    except ValueError as exc:
        start = body[:60].decode("utf-8", "replace").strip()
        raise ProtocolError(
            f"{path} answered something that is not JSON: {start!r}"
            if start
            else f"{path} answered an empty body where JSON was expected"
        ) from exc


def expect_object(data: Any, what: str) -> dict[str, Any]:
    """Return `data` if it is a JSON object.

    Raises:
        ProtocolError: it is anything else.
    """
    if not isinstance(data, dict):
        raise ProtocolError(f"{what} is not a JSON object but {brief(data)}")
    return data


def expect_str(data: dict[str, Any], key: str, what: str) -> str:
    """Return `data[key]` if it is a string.

    Raises:
        ProtocolError: the key is missing or holds another type.
    """
    value = data.get(key)
    if not isinstance(value, str):
        missing = "has no" if key not in data else f"has a non-string ({brief(value)})"
        raise ProtocolError(f"{what} {missing} {key!r}")
    return value


def optional_str(data: dict[str, Any], key: str) -> str | None:
    """Return `data[key]` if it is a string, else None."""
    value = data.get(key)
    return value if isinstance(value, str) else None


def optional_number(data: dict[str, Any], key: str) -> float | None:
    """Return `data[key]` if it is a number (not a bool), else None."""
    value = data.get(key)
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def object_at(data: dict[str, Any], key: str) -> dict[str, Any]:
    """Return `data[key]` if it is an object, else an empty one."""
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def list_at(data: dict[str, Any], key: str) -> list[Any]:
    """Return `data[key]` if it is a list, else an empty one."""
    value = data.get(key)
    return value if isinstance(value, list) else []


def brief(value: Any) -> str:
    """Describe a JSON value in a few words, for an error message."""
    text = json.dumps(value) if isinstance(value, str | int | float | bool | None) else None
    kinds: dict[type, str] = {dict: "an object", list: "a list"}
    described = text if text is not None else kinds.get(type(value), type(value).__name__)
    return described if len(described) <= 60 else described[:57] + "..."
