"""Settings: the only reader of the environment; validates every key once, reports all problems."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = ["MODERATION_MODES", "ConfigError", "Secret", "Settings", "split_list"]


class ConfigError(Exception):
    """Settings are missing or invalid; `problems` lists each as `KEY: what is wrong`."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class Secret:
    """A string that never shows itself in a repr, a str() or a log line."""

    value: str = field(repr=False)

    def __repr__(self) -> str:
        return "Secret('**********')" if self.value else "Secret('')"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self.value)


def _bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected true or false, got {raw!r}")


def _whole(raw: str) -> int:
    try:
        return int(raw.strip())
    except ValueError:
        raise ValueError(f"expected a whole number, got {raw!r}") from None


def _number(raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise ValueError(f"expected a number, got {raw!r}") from None
    if not math.isfinite(value):  # float() takes "nan" and "inf"; no setting means either
        raise ValueError(f"expected a finite number, got {raw!r}")
    return value


def _positive_int(raw: str) -> int:
    value = _whole(raw)
    if value < 1:
        raise ValueError(f"must be at least 1, got {value}")
    return value


def _port(raw: str) -> int:
    value = _whole(raw)
    if not 1 <= value <= 65535:
        raise ValueError(f"must be a port between 1 and 65535, got {value}")
    return value


def _positive_float(raw: str) -> float:
    value = _number(raw)
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


def _urls(raw: str) -> tuple[str, ...]:
    return tuple(http_url(item) for item in raw.split(",") if item.strip())


def _ids(raw: str) -> frozenset[int]:
    ids: set[int] = set()
    for item in raw.replace(" ", "").split(","):
        if not item:
            continue
        if not item.isdigit():
            raise ValueError(f"expected comma-separated Discord ids (digits), got {item!r}")
        ids.add(int(item))
    return frozenset(ids)


def _optional_id(raw: str) -> int | None:
    if not raw.strip():
        return None
    if not raw.strip().isdigit():
        raise ValueError(f"expected a Discord id (digits), got {raw!r}")
    return int(raw)


def _hosts(raw: str) -> frozenset[str]:
    hosts = {item.strip().lower().rstrip(".") for item in raw.split(",") if item.strip()}
    for host in hosts:
        if host != "*" and not all(part.isalnum() or part in "-_.:[]" for part in host):
            raise ValueError(f"expected comma-separated host names, got {host!r}")
    return frozenset(hosts)


def _log_level(raw: str) -> str:
    level = raw.strip().upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
        raise ValueError(f"expected DEBUG, INFO, WARNING, ERROR or CRITICAL, got {raw!r}")
    return level


PREVIEW_METHODS = ("auto", "latent2rgb", "taesd", "none", "default")


def _preview_method(raw: str) -> str:
    method = raw.strip().lower()
    if method not in PREVIEW_METHODS:
        raise ValueError(f"expected one of {', '.join(PREVIEW_METHODS)}, got {raw!r}")
    return method


def _optional_port(raw: str) -> int | None:
    return _port(raw) if raw.strip() else None


def _log_format(raw: str) -> str:
    chosen = raw.strip().lower()
    if chosen not in {"text", "json"}:
        raise ValueError(f"expected text or json, got {raw!r}")
    return chosen


def _fraction(raw: str) -> float:
    value = _number(raw)
    if not 0 < value <= 1:
        raise ValueError(f"must be greater than 0 and at most 1, got {value}")
    return value


def _optional_number(raw: str) -> float | None:
    return _positive_float(raw) if raw.strip() else None


def _optional_whole(raw: str) -> int | None:
    return _positive_int(raw) if raw.strip() else None


def _seconds(raw: str) -> float:
    value = _number(raw)
    if value < 0:
        raise ValueError(f"must be 0 or more seconds, got {value}")
    return value


def _open_fraction(raw: str) -> float:
    value = _number(raw)
    if not 0 < value < 1:
        raise ValueError(f"must be between 0 and 1, got {value}")
    return value


MODERATION_MODES = ("off", "block", "spoiler")


def _moderation(raw: str) -> str:
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


def _secret(raw: str) -> Secret:
    return Secret(raw.strip())


def _text(raw: str) -> str:
    return raw.strip()


def _path(raw: str) -> Path:
    return Path(raw.strip())


# Environment key -> (field name, converter, default as written in .env.example).
_KEYS: dict[str, tuple[str, Callable[[str], Any], str]] = {
    "DISCORD_TOKEN": ("discord_token", _secret, ""),
    "COMFYUI_URL": ("comfy_url", http_url, "http://127.0.0.1:8188"),
    "COMFYUI_URLS": ("comfy_urls", _urls, ""),
    "WORKFLOWS_DIR": ("workflows_dir", _path, "workflows"),
    "DEFAULT_WORKFLOW": ("default_workflow", _text, "txt2img"),
    "DEFAULT_IMAGE_WORKFLOW": ("default_image_workflow", _text, "img2img"),
    "MAX_JOBS_PER_USER": ("max_jobs_per_user", _positive_int, "2"),
    "MAX_IN_FLIGHT_PER_BACKEND": ("max_in_flight_per_backend", _positive_int, "2"),
    "PROGRESS_INTERVAL": ("progress_interval", _positive_float, "1.5"),
    "SHOW_PREVIEWS": ("show_previews", _bool, "true"),
    "PREVIEW_METHOD": ("preview_method", _preview_method, "auto"),
    "MAX_INPUT_IMAGE_BYTES": ("max_input_image_bytes", _positive_int, "20971520"),
    "ALLOWED_CHANNEL_IDS": ("allowed_channel_ids", _ids, ""),
    "ALLOWED_ROLE_IDS": ("allowed_role_ids", _ids, ""),
    "ADMIN_USER_IDS": ("admin_user_ids", _ids, ""),
    "DEV_GUILD_ID": ("dev_guild_id", _optional_id, ""),
    "REQUEST_TIMEOUT": ("request_timeout", _positive_float, "30"),
    "LOG_LEVEL": ("log_level", _log_level, "INFO"),
    "LOG_FORMAT": ("log_format", _log_format, "text"),
    "OUTPUT_DIR": ("output_dir", _path, "outputs"),
    "HTTP_HOST": ("http_host", _text, "127.0.0.1"),
    "HTTP_PORT": ("http_port", _port, "8189"),
    "HTTP_API_TOKEN": ("http_api_token", _secret, ""),
    "HTTP_WORKFLOW": ("http_workflow", _text, "demo"),
    "AUTO_EXECUTE_ON_UPLOAD": ("auto_execute_on_upload", _bool, "false"),
    "HTTP_MAX_BODY_BYTES": ("http_max_body_bytes", _positive_int, "20971520"),
    "DATABASE_PATH": ("database_path", _path, "comfycord.db"),
    "SHARDED": ("sharded", _bool, "false"),
    "HTTP_ALLOWED_HOSTS": ("http_allowed_hosts", _hosts, ""),
    "HTTP_MAX_EVENT_STREAMS": ("http_max_event_streams", _positive_int, "32"),
    "JOURNAL_RETENTION_DAYS": ("journal_retention_days", _positive_float, "30"),
    "JOURNAL_IMAGE_RETENTION_HOURS": ("journal_image_retention_hours", _positive_float, "24"),
    "METRICS_PORT": ("metrics_port", _optional_port, ""),
    "METRICS_HOST": ("metrics_host", _text, "127.0.0.1"),
    "METRICS_TOKEN": ("metrics_token", _secret, ""),
    "UPSCALE_WORKFLOW": ("upscale_workflow", _text, "upscale"),
    "VARY_WORKFLOW": ("vary_workflow", _text, "img2img"),
    "VARY_STRONG": ("vary_strong", _fraction, "0.7"),
    "VARY_SUBTLE": ("vary_subtle", _fraction, "0.35"),
    "ALLOW_DMS": ("allow_dms", _bool, "false"),
    "DAILY_IMAGES": ("daily_images", _optional_whole, ""),
    "DAILY_GPU_SECONDS": ("daily_gpu_seconds", _optional_number, ""),
    "JOB_COOLDOWN": ("job_cooldown", _seconds, "0"),
    "QUOTA_EXEMPT_ADMINS": ("quota_exempt_admins", _bool, "true"),
    "PRIORITY_AGEING": ("priority_ageing", _positive_float, "60"),
    "BANNED_TERMS": ("banned_terms", split_list, ""),
    "IMAGE_MODERATION": ("image_moderation", _moderation, "off"),
    "NSFW_THRESHOLD": ("nsfw_threshold", _open_fraction, "0.6"),
}
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True, slots=True)
class Settings:
    """Every setting ComfyCord reads, converted and validated."""

    discord_token: Secret
    comfy_url: str = field(repr=False)  # may hold user:password@
    comfy_urls: tuple[str, ...] = field(repr=False)
    workflows_dir: Path
    default_workflow: str
    default_image_workflow: str
    max_jobs_per_user: int
    max_in_flight_per_backend: int
    progress_interval: float
    show_previews: bool
    preview_method: str
    max_input_image_bytes: int
    allowed_channel_ids: frozenset[int]
    allowed_role_ids: frozenset[int]
    admin_user_ids: frozenset[int]
    dev_guild_id: int | None
    request_timeout: float
    log_level: str
    log_format: str
    output_dir: Path
    http_host: str
    http_port: int
    http_api_token: Secret
    http_workflow: str
    auto_execute_on_upload: bool
    http_max_body_bytes: int
    database_path: Path
    sharded: bool
    http_allowed_hosts: frozenset[str]
    http_max_event_streams: int
    journal_retention_days: float
    journal_image_retention_hours: float
    metrics_port: int | None
    metrics_host: str
    metrics_token: Secret
    upscale_workflow: str
    vary_workflow: str
    vary_strong: float
    vary_subtle: float
    allow_dms: bool
    daily_images: int | None
    daily_gpu_seconds: float | None
    job_cooldown: float
    quota_exempt_admins: bool
    priority_ageing: float
    banned_terms: tuple[str, ...]
    image_moderation: str
    nsfw_threshold: float

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Build settings from a mapping of environment variables; pure.

        Raises:
            ConfigError: listing every key that is invalid, all at once.
        """
        values: dict[str, Any] = {}
        problems: list[str] = []
        for key, (name, convert, default) in _KEYS.items():
            raw = environ.get(key, default)
            try:
                values[name] = convert(raw)
            except ValueError as exc:
                problems.append(f"{key}: {exc}")
        if problems:
            raise ConfigError(problems)
        return cls(**values)

    @property
    def backend_urls(self) -> tuple[str, ...]:
        """Return every ComfyUI server to use: COMFYUI_URLS when set, else COMFYUI_URL."""
        return self.comfy_urls or (self.comfy_url,)

    def require_discord(self) -> None:
        """Check what the Discord bot needs beyond the other front doors.

        Raises:
            ConfigError: when DISCORD_TOKEN is missing or cannot be a bot token.
        """
        token = self.discord_token.value
        if not token:
            raise ConfigError(
                [
                    "DISCORD_TOKEN: missing. Create a bot at https://discord.com/developers/applications,"
                    " copy its token (Bot > Reset Token) into .env as DISCORD_TOKEN=..."
                ]
            )
        if token.count(".") != 2 or any(c.isspace() for c in token):
            raise ConfigError(
                ["DISCORD_TOKEN: does not look like a bot token (three dot-separated parts)."]
            )

    def require_http_token(self) -> None:
        """Check that the HTTP middleware is protected when it listens beyond loopback.

        Raises:
            ConfigError: when HTTP_HOST is not a loopback address and HTTP_API_TOKEN is empty.
        """
        if self.http_host not in LOOPBACK and not self.http_api_token:
            raise ConfigError(
                [
                    f"HTTP_API_TOKEN: required when HTTP_HOST is {self.http_host!r} (not loopback);"
                    " set a long random token, clients send it as 'Authorization: Bearer <token>'."
                ]
            )

    def require_metrics_token(self) -> None:
        """Check that the bot's metrics port is protected when it listens beyond loopback.

        Raises:
            ConfigError: when METRICS_HOST is not a loopback address and METRICS_TOKEN is empty.
        """
        if self.metrics_host not in LOOPBACK and not self.metrics_token:
            raise ConfigError(
                [
                    f"METRICS_TOKEN: required when METRICS_HOST is {self.metrics_host!r} (not"
                    " loopback); Prometheus sends it as 'authorization: credentials: <token>'."
                ]
            )


def env_keys() -> dict[str, str]:
    """Return every environment key Settings reads, with its default."""
    return {key: default for key, (_, _, default) in _KEYS.items()}
