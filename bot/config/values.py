"""Converters of one setting's text: each returns the value, or raises ValueError saying why.

Pure and environment-free: `bot.config.settings` applies them to the keys it reads, and the
community settings reuse them for the values set on a server.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit


@dataclass(frozen=True, slots=True)
class Secret:
    """A string that never shows itself in a repr, a str() or a log line."""

    value: str = field(repr=False)

    def __repr__(self) -> str:
        return "Secret('**********')" if self.value else "Secret('')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self.value)


def boolean(raw: str) -> bool:
    """Return true for 1, true, yes or on; false for 0, false, no, off or nothing."""
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected true or false, got {raw!r}")


def whole(raw: str) -> int:
    """Return a whole number."""
    try:
        return int(raw.strip())
    except ValueError:
        raise ValueError(f"expected a whole number, got {raw!r}") from None


def number(raw: str) -> float:
    """Return a finite number."""
    try:
        value = float(raw.strip())
    except ValueError:
        raise ValueError(f"expected a number, got {raw!r}") from None
    if not math.isfinite(value):  # float() takes "nan" and "inf"; no setting means either
        raise ValueError(f"expected a finite number, got {raw!r}")
    return value


def positive_int(raw: str) -> int:
    """Return a whole number of at least 1."""
    value = whole(raw)
    if value < 1:
        raise ValueError(f"must be at least 1, got {value}")
    return value


def port(raw: str) -> int:
    """Return a port number, 1 to 65535."""
    value = whole(raw)
    if not 1 <= value <= 65535:
        raise ValueError(f"must be a port between 1 and 65535, got {value}")
    return value


def positive_float(raw: str) -> float:
    """Return a number greater than 0."""
    value = number(raw)
    if value <= 0:
        raise ValueError(f"must be greater than 0, got {value}")
    return value


def http_url(raw: str) -> str:
    """Return an http(s) URL without surrounding blanks or a trailing slash.

    Raises:
        ValueError: it is not an http:// or https:// URL with a host.
    """
    parts = urlsplit(raw.strip())
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise ValueError(f"expected an http:// or https:// URL, got {raw!r}")
    return raw.strip().rstrip("/")


def urls(raw: str) -> tuple[str, ...]:
    """Return comma-separated http(s) URLs, each as `http_url` returns it."""
    return tuple(http_url(item) for item in raw.split(",") if item.strip())


def ids(raw: str) -> frozenset[int]:
    """Return comma-separated Discord ids (digits); none for an empty text."""
    ids: set[int] = set()
    for item in raw.replace(" ", "").split(","):
        if not item:
            continue
        if not item.isdigit():
            raise ValueError(f"expected comma-separated Discord ids (digits), got {item!r}")
        ids.add(int(item))
    return frozenset(ids)


def optional_id(raw: str) -> int | None:
    """Return one Discord id, or None for an empty text."""
    if not raw.strip():
        return None
    if not raw.strip().isdigit():
        raise ValueError(f"expected a Discord id (digits), got {raw!r}")
    return int(raw)


def hosts(raw: str) -> frozenset[str]:
    """Return comma-separated host names, lowercase, or `*`."""
    hosts = {item.strip().lower().rstrip(".") for item in raw.split(",") if item.strip()}
    for host in hosts:
        if host != "*" and not all(part.isalnum() or part in "-_.:[]" for part in host):
            raise ValueError(f"expected comma-separated host names, got {host!r}")
    return frozenset(hosts)


def log_level(raw: str) -> str:
    """Return a logging level name: DEBUG, INFO, WARNING, ERROR or CRITICAL."""
    level = raw.strip().upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
        raise ValueError(f"expected DEBUG, INFO, WARNING, ERROR or CRITICAL, got {raw!r}")
    return level


PREVIEW_METHODS = ("auto", "latent2rgb", "taesd", "none", "default")


def preview_method(raw: str) -> str:
    """Return one of PREVIEW_METHODS."""
    method = raw.strip().lower()
    if method not in PREVIEW_METHODS:
        raise ValueError(f"expected one of {', '.join(PREVIEW_METHODS)}, got {raw!r}")
    return method


def optional_port(raw: str) -> int | None:
    """Return a port number, or None for an empty text."""
    return port(raw) if raw.strip() else None


def log_format(raw: str) -> str:
    """Return text or json."""
    chosen = raw.strip().lower()
    if chosen not in {"text", "json"}:
        raise ValueError(f"expected text or json, got {raw!r}")
    return chosen


def fraction(raw: str) -> float:
    """Return a number greater than 0 and at most 1."""
    value = number(raw)
    if not 0 < value <= 1:
        raise ValueError(f"must be greater than 0 and at most 1, got {value}")
    return value


def optional_number(raw: str) -> float | None:
    """Return a number greater than 0, or None for an empty text."""
    return positive_float(raw) if raw.strip() else None


def optional_whole(raw: str) -> int | None:
    """Return a whole number of at least 1, or None for an empty text."""
    return positive_int(raw) if raw.strip() else None


def seconds(raw: str) -> float:
    """Return a number of seconds, 0 or more."""
    value = number(raw)
    if value < 0:
        raise ValueError(f"must be 0 or more seconds, got {value}")
    return value


def open_fraction(raw: str) -> float:
    """Return a number strictly between 0 and 1."""
    value = number(raw)
    if not 0 < value < 1:
        raise ValueError(f"must be between 0 and 1, got {value}")
    return value


MODERATION_MODES = ("off", "block", "spoiler")


def moderation(raw: str) -> str:
    """Return one of MODERATION_MODES."""
    mode = raw.strip().lower()
    if mode not in MODERATION_MODES:
        raise ValueError(f"expected off, block or spoiler, got {raw!r}")
    return mode


def split_list(raw: str) -> tuple[str, ...]:
    """Split a comma-separated list; a comma inside `/a regex/` does not split it."""
    items: list[str] = []
    current = ""
    in_regex = False
    for char in raw:
        if char == "/" and (in_regex or not current.strip()):
            in_regex = not in_regex
        if char == "," and not in_regex:
            items.append(current)
            current = ""
            continue
        current += char
    items.append(current)
    return tuple(item.strip() for item in items if item.strip())


def secret(raw: str) -> Secret:
    """Return the text as a Secret, without surrounding blanks."""
    return Secret(raw.strip())


def text(raw: str) -> str:
    """Return the text without surrounding blanks."""
    return raw.strip()


def path(raw: str) -> Path:
    """Return the text as a path."""
    return Path(raw.strip())
