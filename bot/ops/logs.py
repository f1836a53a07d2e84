"""Log formatting: readable text or one JSON object per line, both with secrets masked."""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TextIO

from bot.config import Settings
from bot.jobs.logcontext import LOG_FIELDS, current

TEXT_FORMAT = "%(asctime)s %(levelname)-8s %(name)s: %(message)s"
MASK = "**********"

# Secrets that can hide in a message we did not write (a library's, an exception's text).
_PATTERNS = (
    re.compile(r"(?P<keep>://[^\s:/@]+:)[^\s@/]+(?=@)"),  # password in a URL
    re.compile(r"(?P<keep>/(?:webhooks|interactions)/\d+/)[\w.-]{20,}"),  # interaction tokens
    re.compile(r"(?P<keep>\bBearer\s+)[\w.~+/=-]{8,}", re.IGNORECASE),
    re.compile(r"(?P<keep>)\b[\w-]{20,}\.[\w-]{5,}\.[\w-]{20,}"),  # Discord bot tokens, JWTs
    re.compile(r"(?P<keep>\b(?:token|password|secret)=)[^\s&'\"]+", re.IGNORECASE),
)


class Redactor:
    """Mask known secret values and secret-shaped text in a log line."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so a secret containing another is masked whole.
        self._secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def __repr__(self) -> str:
        return f"Redactor({len(self._secrets)} secrets)"

    def __call__(self, text: str) -> str:
        """Return `text` with every secret masked."""
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        for pattern in _PATTERNS:
            text = pattern.sub(lambda m: m.group("keep") + MASK, text)
        return text


def fields_of(record: logging.LogRecord) -> dict[str, str]:
    """Return the log fields of a record: the task's context, then any given with `extra=`."""
    found = dict(current())
    for key in LOG_FIELDS:
        value = getattr(record, key, None)
        if value is not None:
            found[key] = str(value)
    return found


class TextFormatter(logging.Formatter):
    """The readable default: time, level, logger and message, secrets masked."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__(TEXT_FORMAT)
        self._redact = redact

    def format(self, record: logging.LogRecord) -> str:
        """Format as text, then mask secrets (the traceback's too)."""
        return self._redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the job's fields, exception."""

    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self._redact = redact

    def format(self, record: logging.LogRecord) -> str:
        """Format as one line of JSON with secrets masked."""
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": self._redact(record.getMessage()),
            **{key: self._redact(value) for key, value in fields_of(record).items()},
        }
        if record.exc_info:
            entry["exception"] = self._redact(self.formatException(record.exc_info))
        elif record.exc_text:
            entry["exception"] = self._redact(record.exc_text)
        return json.dumps(entry, ensure_ascii=False, default=str)


def formatter_for(settings: Settings) -> logging.Formatter:
    """Return the formatter LOG_FORMAT asks for, masking every secret the settings hold."""
    secrets = (
        settings.discord_token.value,
        settings.http_api_token.value,
        settings.metrics_token.value,
    )
    redact = Redactor(secrets)
    return JsonFormatter(redact) if settings.log_format == "json" else TextFormatter(redact)


def setup_logging(settings: Settings, stream: TextIO | None = None) -> None:
    """Send log lines to stderr (or `stream`) in LOG_FORMAT at LOG_LEVEL.

    Called once, by the command line, before any command runs; like `logging.basicConfig`, it
    leaves a root logger that already has handlers (a test's capture) alone.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter_for(settings))
    logging.basicConfig(level=settings.log_level, handlers=[handler])
