"""Settings: pure parsing, every problem at once, secrets never shown."""

import logging
from dataclasses import fields
from pathlib import Path

import pytest

from bot.config import ConfigError, Settings, env_keys

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GabcDE.abcdefghijklmnopqrstuvwxyz0123456789AB"


def test_defaults_without_any_key():
    settings = Settings.from_env({})
    assert settings.comfy_url == "http://127.0.0.1:8188"
    assert settings.backend_urls == ("http://127.0.0.1:8188",)
    assert settings.progress_interval == 1.5
    assert settings.http_port == 8189
    assert not settings.discord_token


def test_every_bad_key_is_reported_at_once():
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(
            {
                "COMFYUI_URL": "localhost:8188",
                "MAX_JOBS_PER_USER": "0",
                "PROGRESS_INTERVAL": "soon",
                "SHOW_PREVIEWS": "maybe",
                "ALLOWED_CHANNEL_IDS": "12,abc",
                "HTTP_PORT": "70000",
            }
        )
    problems = caught.value.problems
    assert "MAX_JOBS_PER_USER: must be at least 1, got 0" in problems
    assert "PROGRESS_INTERVAL: expected a number, got 'soon'" in problems
    keys = [problem.split(":")[0] for problem in problems]
    assert keys == [
        "COMFYUI_URL",
        "MAX_JOBS_PER_USER",
        "PROGRESS_INTERVAL",
        "SHOW_PREVIEWS",
        "ALLOWED_CHANNEL_IDS",
        "HTTP_PORT",
    ]


def test_lists_and_several_backends():
    settings = Settings.from_env(
        {
            "COMFYUI_URLS": "http://gpu1:8188/, http://gpu2:8188",
            "ALLOWED_ROLE_IDS": "1, 2,3",
            "DEV_GUILD_ID": "42",
        }
    )
    assert settings.backend_urls == ("http://gpu1:8188", "http://gpu2:8188")
    assert settings.allowed_role_ids == frozenset({1, 2, 3})
    assert settings.dev_guild_id == 42


def test_token_never_appears_in_repr_str_or_logs(caplog):
    settings = Settings.from_env({"DISCORD_TOKEN": TOKEN, "HTTP_API_TOKEN": "hunter2hunter2"})
    assert settings.discord_token.value == TOKEN
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("test").info("settings: %s %r", settings, settings)
    for text in (repr(settings), str(settings), caplog.text):
        assert TOKEN not in text
        assert "hunter2hunter2" not in text


def test_require_discord_explains_a_missing_or_malformed_token():
    with pytest.raises(ConfigError, match="DISCORD_TOKEN: missing"):
        Settings.from_env({}).require_discord()
    with pytest.raises(ConfigError, match="does not look like a bot token"):
        Settings.from_env({"DISCORD_TOKEN": "not a token"}).require_discord()
    Settings.from_env({"DISCORD_TOKEN": TOKEN}).require_discord()


def test_http_token_required_beyond_loopback():
    Settings.from_env({}).require_http_token()
    with pytest.raises(ConfigError, match="HTTP_API_TOKEN"):
        Settings.from_env({"HTTP_HOST": "0.0.0.0"}).require_http_token()
    Settings.from_env({"HTTP_HOST": "0.0.0.0", "HTTP_API_TOKEN": "t" * 32}).require_http_token()


def test_metrics_are_off_by_default_on_loopback_and_need_a_token_beyond_it():
    settings = Settings.from_env({})
    assert settings.metrics_port is None
    assert settings.metrics_host == "127.0.0.1"
    assert settings.log_format == "text"
    settings.require_metrics_token()
    with pytest.raises(ConfigError) as refused:
        Settings.from_env(
            {"METRICS_HOST": "0.0.0.0", "METRICS_PORT": "9100"}
        ).require_metrics_token()
    assert refused.value.problems == [
        "METRICS_TOKEN: required when METRICS_HOST is '0.0.0.0' (not loopback);"
        " Prometheus sends it as 'authorization: credentials: <token>'."
    ]
    token = Settings.from_env({"METRICS_HOST": "0.0.0.0", "METRICS_TOKEN": "t" * 32})
    token.require_metrics_token()
    assert "t" * 32 not in repr(token)


def test_bad_metrics_port_and_log_format_are_reported_by_name():
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"METRICS_PORT": "0", "LOG_FORMAT": "xml"})
    assert caught.value.problems == [
        "LOG_FORMAT: expected text or json, got 'xml'",
        "METRICS_PORT: must be a port between 1 and 65535, got 0",
    ]


def test_env_example_lists_exactly_the_keys_settings_read_with_their_defaults():
    example = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            example[key] = value
    assert example == env_keys()


def test_every_key_maps_to_a_settings_field():
    assert len(env_keys()) == len(fields(Settings))
    Settings.from_env(env_keys())


def test_hardening_settings_parse_and_refuse_bad_values():
    settings = Settings.from_env(
        {
            "HTTP_ALLOWED_HOSTS": "Comfy.LAN., gpu-box:8189, *",
            "HTTP_MAX_EVENT_STREAMS": "5",
            "JOURNAL_RETENTION_DAYS": "7",
            "JOURNAL_IMAGE_RETENTION_HOURS": "0.5",
        }
    )
    assert settings.http_allowed_hosts == frozenset({"comfy.lan", "gpu-box:8189", "*"})
    assert settings.http_max_event_streams == 5
    assert (settings.journal_retention_days, settings.journal_image_retention_hours) == (7, 0.5)
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(
            {
                "HTTP_ALLOWED_HOSTS": "ok.lan, evil/path",
                "HTTP_MAX_EVENT_STREAMS": "0",
                "JOURNAL_RETENTION_DAYS": "-1",
                "JOURNAL_IMAGE_RETENTION_HOURS": "soon",
            }
        )
    assert [p.split(":")[0] for p in caught.value.problems] == [
        "HTTP_ALLOWED_HOSTS",
        "HTTP_MAX_EVENT_STREAMS",
        "JOURNAL_RETENTION_DAYS",
        "JOURNAL_IMAGE_RETENTION_HOURS",
    ]
    assert "HTTP_ALLOWED_HOSTS: expected comma-separated host names, got 'evil/path'" in (
        caught.value.problems
    )


def test_preview_method_defaults_to_auto_and_is_checked():
    assert Settings.from_env({}).preview_method == "auto"
    assert Settings.from_env({"PREVIEW_METHOD": " TAESD "}).preview_method == "taesd"
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"PREVIEW_METHOD": "fast"})
    assert caught.value.problems == [
        "PREVIEW_METHOD: expected one of auto, latent2rgb, taesd, none, default, got 'fast'"
    ]


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e400", " NaN "])
def test_non_finite_numbers_are_refused(value):
    # float() takes these; an infinite REQUEST_TIMEOUT crashed the runner with OverflowError and
    # a NaN PROGRESS_INTERVAL passed every "greater than 0" check.
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"REQUEST_TIMEOUT": value, "PROGRESS_INTERVAL": value})
    assert caught.value.problems == [
        f"PROGRESS_INTERVAL: expected a finite number, got {value!r}",
        f"REQUEST_TIMEOUT: expected a finite number, got {value!r}",
    ]


def test_the_readme_documents_every_setting():
    readme = (ROOT / "README.md").read_text()
    documented = {
        line.split("|")[1].strip().strip("`")
        for line in readme.splitlines()
        if line.startswith("| `")
    }
    assert set(env_keys()) <= documented, set(env_keys()) - documented


def test_community_defaults_and_their_errors():
    settings = Settings.from_env(
        {
            "DAILY_IMAGES": "20",
            "DAILY_GPU_SECONDS": "",
            "BANNED_TERMS": "nsfw, big cat, /x{1,2}/",
            "IMAGE_MODERATION": "Spoiler",
        }
    )
    assert (settings.daily_images, settings.daily_gpu_seconds) == (20, None)
    assert settings.banned_terms == ("nsfw", "big cat", "/x{1,2}/")
    assert settings.image_moderation == "spoiler"
    assert not settings.allow_dms
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(
            {"IMAGE_MODERATION": "blur", "NSFW_THRESHOLD": "1.5", "JOB_COOLDOWN": "-1"}
        )
    assert caught.value.problems == [
        "JOB_COOLDOWN: must be 0 or more seconds, got -1.0",
        "IMAGE_MODERATION: expected off, block or spoiler, got 'blur'",
        "NSFW_THRESHOLD: must be between 0 and 1, got 1.5",
    ]
