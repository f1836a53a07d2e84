"""Settings: the only reader of the environment; validates every key once, reports all problems."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.config.values import (
    Secret,
    boolean,
    fraction,
    hosts,
    http_url,
    ids,
    log_format,
    log_level,
    moderation,
    open_fraction,
    optional_id,
    optional_number,
    optional_port,
    optional_whole,
    path,
    port,
    positive_float,
    positive_int,
    preview_method,
    seconds,
    secret,
    split_list,
    text,
    urls,
)

__all__ = ["ConfigError", "Settings", "env_keys"]


class ConfigError(Exception):
    """Settings are missing or invalid; `problems` lists each as `KEY: what is wrong`."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


# Environment key -> (field name, converter, default as written in .env.example).
_KEYS: dict[str, tuple[str, Callable[[str], Any], str]] = {
    "DISCORD_TOKEN": ("discord_token", secret, ""),
    "COMFYUI_URL": ("comfy_url", http_url, "http://127.0.0.1:8188"),
    "COMFYUI_URLS": ("comfy_urls", urls, ""),
    "WORKFLOWS_DIR": ("workflows_dir", path, "workflows"),
    "DEFAULT_WORKFLOW": ("default_workflow", text, "txt2img"),
    "DEFAULT_IMAGE_WORKFLOW": ("default_image_workflow", text, "img2img"),
    "MAX_JOBS_PER_USER": ("max_jobs_per_user", positive_int, "2"),
    "MAX_IN_FLIGHT_PER_BACKEND": ("max_in_flight_per_backend", positive_int, "2"),
    "PROGRESS_INTERVAL": ("progress_interval", positive_float, "1.5"),
    "SHOW_PREVIEWS": ("show_previews", boolean, "true"),
    "PREVIEW_METHOD": ("preview_method", preview_method, "auto"),
    "MAX_INPUT_IMAGE_BYTES": ("max_input_image_bytes", positive_int, "20971520"),
    "ALLOWED_CHANNEL_IDS": ("allowed_channel_ids", ids, ""),
    "ALLOWED_ROLE_IDS": ("allowed_role_ids", ids, ""),
    "ADMIN_USER_IDS": ("admin_user_ids", ids, ""),
    "DEV_GUILD_ID": ("dev_guild_id", optional_id, ""),
    "REQUEST_TIMEOUT": ("request_timeout", positive_float, "30"),
    "LOG_LEVEL": ("log_level", log_level, "INFO"),
    "LOG_FORMAT": ("log_format", log_format, "text"),
    "OUTPUT_DIR": ("output_dir", path, "outputs"),
    "HTTP_HOST": ("http_host", text, "127.0.0.1"),
    "HTTP_PORT": ("http_port", port, "8189"),
    "HTTP_API_TOKEN": ("http_api_token", secret, ""),
    "HTTP_WORKFLOW": ("http_workflow", text, "demo"),
    "AUTO_EXECUTE_ON_UPLOAD": ("auto_execute_on_upload", boolean, "false"),
    "HTTP_MAX_BODY_BYTES": ("http_max_body_bytes", positive_int, "20971520"),
    "DATABASE_PATH": ("database_path", path, "comfycord.db"),
    "SHARDED": ("sharded", boolean, "false"),
    "HTTP_ALLOWED_HOSTS": ("http_allowed_hosts", hosts, ""),
    "HTTP_MAX_EVENT_STREAMS": ("http_max_event_streams", positive_int, "32"),
    "JOURNAL_RETENTION_DAYS": ("journal_retention_days", positive_float, "30"),
    "JOURNAL_IMAGE_RETENTION_HOURS": ("journal_image_retention_hours", positive_float, "24"),
    "METRICS_PORT": ("metrics_port", optional_port, ""),
    "METRICS_HOST": ("metrics_host", text, "127.0.0.1"),
    "METRICS_TOKEN": ("metrics_token", secret, ""),
    "UPSCALE_WORKFLOW": ("upscale_workflow", text, "upscale"),
    "VARY_WORKFLOW": ("vary_workflow", text, "img2img"),
    "VARY_STRONG": ("vary_strong", fraction, "0.7"),
    "VARY_SUBTLE": ("vary_subtle", fraction, "0.35"),
    "ALLOW_DMS": ("allow_dms", boolean, "false"),
    "DAILY_IMAGES": ("daily_images", optional_whole, ""),
    "DAILY_GPU_SECONDS": ("daily_gpu_seconds", optional_number, ""),
    "JOB_COOLDOWN": ("job_cooldown", seconds, "0"),
    "QUOTA_EXEMPT_ADMINS": ("quota_exempt_admins", boolean, "true"),
    "PRIORITY_AGEING": ("priority_ageing", positive_float, "60"),
    "BANNED_TERMS": ("banned_terms", split_list, ""),
    "IMAGE_MODERATION": ("image_moderation", moderation, "off"),
    "NSFW_THRESHOLD": ("nsfw_threshold", open_fraction, "0.6"),
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
        how = "set a long random token, clients send it as 'Authorization: Bearer <token>'."
        _require_token("HTTP_API_TOKEN", "HTTP_HOST", self.http_host, self.http_api_token, how)

    def require_metrics_token(self) -> None:
        """Check that the bot's metrics port is protected when it listens beyond loopback.

        Raises:
            ConfigError: when METRICS_HOST is not a loopback address and METRICS_TOKEN is empty.
        """
        how = "Prometheus sends it as 'authorization: credentials: <token>'."
        _require_token("METRICS_TOKEN", "METRICS_HOST", self.metrics_host, self.metrics_token, how)


def _require_token(key: str, host_key: str, host: str, token: Secret, how: str) -> None:
    if host not in LOOPBACK and not token:
        raise ConfigError([f"{key}: required when {host_key} is {host!r} (not loopback); {how}"])


def env_keys() -> dict[str, str]:
    """Return every environment key Settings reads, with its default."""
    return {key: default for key, (_, _, default) in _KEYS.items()}
