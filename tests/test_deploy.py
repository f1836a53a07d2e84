"""The container files stay true: compose against its schema, the Dockerfile's commands run.

No docker daemon here: the compose file is checked against the Compose Specification's JSON
schema (the copy check-jsonschema ships) and against what ComfyCord needs of it; the
Dockerfile's install and start commands run in a fresh virtual environment.
"""

from __future__ import annotations

import importlib.resources
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from bot.config import env_keys

ROOT = Path(__file__).resolve().parents[1]
PYTHON_ENV = {
    "PYTHONDONTWRITEBYTECODE",
    "PYTHONUNBUFFERED",
    "PIP_DISABLE_PIP_VERSION_CHECK",
    "PIP_ROOT_USER_ACTION",
}


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def compose_schema() -> dict[str, Any]:
    vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    schema: dict[str, Any] = json.loads(vendor.joinpath("compose-spec.json").read_text())
    return schema


def instructions(path: Path) -> list[tuple[str, str]]:
    """Return a Dockerfile's instructions as (KEYWORD, arguments), continuations joined."""
    found: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        pending += line.removesuffix("\\").strip() + " "
        if not line.endswith("\\"):
            keyword, _, rest = pending.strip().partition(" ")
            found.append((keyword.upper(), rest.strip()))
            pending = ""
    return found


def exec_form(arguments: str) -> list[str]:
    command = json.loads(arguments)
    assert isinstance(command, list), arguments
    return [str(part) for part in command]


def env_of(path: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, rest in instructions(path):
        if keyword == "ENV":
            env.update(pair.split("=", 1) for pair in shlex.split(rest))
    return env


def test_the_compose_file_follows_the_compose_specification() -> None:
    validator = jsonschema.Draft202012Validator(compose_schema())
    errors = sorted(validator.iter_errors(compose()), key=lambda e: list(e.path))
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors]


def test_the_schema_check_catches_a_broken_file() -> None:
    broken = compose()
    broken["services"]["bot"]["restart"] = ["always"]
    broken["services"]["comfyui"]["volumes"] = "models"
    validator = jsonschema.Draft202012Validator(compose_schema())
    assert len(list(validator.iter_errors(broken))) >= 2


def test_compose_runs_the_bot_beside_a_gpu_comfyui_on_a_shared_network() -> None:
    services = compose()["services"]
    comfyui, bot = services["comfyui"], services["bot"]
    devices = comfyui["deploy"]["resources"]["reservations"]["devices"]
    assert any("gpu" in device["capabilities"] for device in devices)
    assert set(comfyui["networks"]) & set(bot["networks"]) == {"comfy"}
    assert compose()["networks"]["comfy"]["internal"] is True
    assert bot["environment"]["COMFYUI_URL"] == "http://comfyui:8188"
    assert bot["depends_on"]["comfyui"]["condition"] == "service_healthy"
    mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in comfyui["volumes"]}
    assert {"/opt/comfyui/models", "/opt/comfyui/output"} <= set(mounts)
    assert env_of(ROOT / "Dockerfile")["DATABASE_PATH"].startswith("/data/")
    assert any(volume.endswith(":/data") for volume in bot["volumes"])


def test_compose_publishes_only_the_middleware_port() -> None:
    services = compose()["services"]
    published = {name: service.get("ports") for name, service in services.items()}
    assert published == {"comfyui": None, "bot": None, "middleware": ["8189:8189"]}
    assert services["middleware"]["profiles"] == ["http"]


def test_compose_names_only_settings_comfycord_reads_and_declares_its_volumes() -> None:
    file = compose()
    keys = set(env_keys())
    for name in ("bot", "middleware"):
        assert set(file["services"][name]["environment"]) <= keys, name
    named = {
        volume.split(":")[0]
        for service in file["services"].values()
        for volume in service.get("volumes", ())
        if not volume.startswith((".", "/"))
    }
    assert named == set(file["volumes"])
    image_env = set(env_of(ROOT / "Dockerfile")) - PYTHON_ENV
    assert image_env <= keys


def test_the_image_runs_as_a_user_with_volumes_and_a_health_check() -> None:
    steps = instructions(ROOT / "Dockerfile")
    keywords = [keyword for keyword, _ in steps]
    base = steps[0]
    assert base[0] == "FROM"
    assert base[1].endswith("-slim")
    user = next(rest for keyword, rest in steps if keyword == "USER")
    assert user.split(":")[0] not in {"0", "root"}
    assert keywords.index("USER") < keywords.index("CMD")
    volumes = exec_form(next(rest for keyword, rest in steps if keyword == "VOLUME"))
    env = env_of(ROOT / "Dockerfile")
    assert {"/data", "/workflows"} == set(volumes)
    assert env["WORKFLOWS_DIR"] == "/workflows"
    health = next(rest for keyword, rest in steps if keyword == "HEALTHCHECK")
    assert exec_form(health.split("CMD", 1)[1]) == ["comfycord", "health"]
    installs = [rest for keyword, rest in steps if keyword == "RUN" and "pip install" in rest]
    assert installs == ["pip install --no-cache-dir ."]  # runtime dependencies only, no [dev]


def _fresh_venv(tmp_path: Path) -> Path:
    """Make a venv that sees this environment's packages (so nothing is downloaded).

    Without pip of its own: pip and the build backend come from here, and the package is
    installed into the new environment, as in the image.
    """
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next(venv.glob("lib/python*/site-packages"))
    (site / "_outer.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv


def _copy_context(tmp_path: Path) -> Path:
    """Copy what the Dockerfile's COPY lines bring into the image's WORKDIR."""
    app = tmp_path / "app"
    app.mkdir()
    for keyword, rest in instructions(ROOT / "Dockerfile"):
        if keyword != "COPY" or rest.startswith("--chown"):
            continue
        *sources, _ = rest.split()
        for source in sources:
            path = ROOT / source.rstrip("/")
            if path.is_dir():
                shutil.copytree(path, app / path.name, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy(path, app / path.name)
    return app


@pytest.mark.timeout(300)
def test_the_dockerfile_install_and_start_commands_work_in_a_fresh_venv(tmp_path: Path) -> None:
    steps = instructions(ROOT / "Dockerfile")
    venv, app = _fresh_venv(tmp_path), _copy_context(tmp_path)
    python = venv / "bin" / "python"
    install = next(
        shlex.split(rest) for keyword, rest in steps if keyword == "RUN" and "pip" in rest
    )
    assert install[:2] == ["pip", "install"]
    offline = ["--no-index", "--no-build-isolation", "--quiet"]
    subprocess.run([str(python), "-m", *install, *offline], cwd=app, check=True)
    imports = "import bot, bot.ops.metrics, cogs.generate; print(bot.__file__)"
    where = subprocess.run(
        [str(python), "-c", imports], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert where.stdout.strip().startswith(str(venv)), where.stdout

    env = {key: value for key, value in os.environ.items() if key not in env_keys()}
    env |= env_of(ROOT / "Dockerfile") | {"PATH": f"{venv / 'bin'}:{env.get('PATH', '')}"}
    env |= {"DATABASE_PATH": str(tmp_path / "comfycord.db"), "WORKFLOWS_DIR": str(app)}
    start = exec_form(next(rest for keyword, rest in steps if keyword == "CMD"))
    started = subprocess.run(start, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert started.returncode == 2, started.stderr
    assert "DISCORD_TOKEN: missing" in started.stderr

    health = exec_form(next(rest for k, rest in steps if k == "HEALTHCHECK").split("CMD", 1)[1])
    env["METRICS_PORT"] = str(_free_port())
    checked = subprocess.run(health, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert checked.returncode == 1, checked.stderr
    assert "does not answer" in checked.stderr


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_the_readme_links_the_deployment_guide() -> None:
    assert "(docs/deploy.md)" in (ROOT / "README.md").read_text()
    guide = (ROOT / "docs" / "deploy.md").read_text()
    for topic in ("docker compose", "systemd", "backup", "METRICS_TOKEN", "HTTP_API_TOKEN"):
        assert topic in guide, topic
