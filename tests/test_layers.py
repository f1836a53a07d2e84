"""The layers stay apart: bot/comfy knows ComfyUI only, the middle no Discord, bot/ no cogs."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Modules in the middle: they deal in dataclasses and asyncio, not in Discord or HTTP serving.
MIDDLE = (
    "jobs",
    "jobqueue",
    "lineup",
    "progress",
    "journal",
    "store",
    "recovery",
    "images",
    "workflows",
    "workflow_detect",
    "workflow_graph",
    "workflow_model",
    "workflow_sidecar",
    "workflow_validate",
    "workflow_errors",
    "render",
    "tasks",
    "execution",
)


def imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_nothing_in_bot_imports_cogs():
    for path in (ROOT / "bot").rglob("*.py"):
        assert not any(name.split(".")[0] == "cogs" for name in imports(path)), path


def test_the_comfy_package_imports_nothing_else_of_bot():
    for path in (ROOT / "bot" / "comfy").glob("*.py"):
        own = {n for n in imports(path) if n.split(".")[0] == "bot"}
        assert all(n.startswith("bot.comfy") for n in own), (path, own)


@pytest.mark.parametrize("module", MIDDLE)
def test_the_middle_knows_no_discord(module):
    path = ROOT / "bot" / f"{module}.py"
    assert path.exists(), path
    names = imports(path)
    assert not any(n.split(".")[0] == "discord" for n in names), names
    assert not any(n.startswith(("bot.discord", "bot.bot", "aiohttp.web")) for n in names), names
