"""Configuration: Settings, the only reader of the environment, and the converters of its values."""

from bot.config.settings import ConfigError, Settings, env_keys
from bot.config.values import MODERATION_MODES, Secret, http_url, split_list

__all__ = [
    "MODERATION_MODES",
    "ConfigError",
    "Secret",
    "Settings",
    "env_keys",
    "http_url",
    "split_list",
]
