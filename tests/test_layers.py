"""The layers stay apart and no import goes round in a circle, checked by walking every import.

Front doors (bot.discord, bot.http, bot.terminal) sit over the community controls
(bot.community: settings, quotas, moderation) and the core (bot.jobs), which sits over
bot.workflows and bot.comfy; bot.ops (metrics, health, logs) sits beside the front doors, which
hand it what it watches; the small shared modules at the top serve everyone. The rules are by
package prefix, so a new module lands under its package's rule without editing this file.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = {"bot", "bot.config", "bot.errors", "bot.images", "bot.pngrows", "bot.tasks"}
# A shared module may be a package (bot.config): its parts are shared too.
# What each package may import of ours besides itself and the shared modules.
ALLOWED: dict[str, set[str]] = {
    "bot.comfy": set(),
    "bot.workflows": {"bot.comfy"},
    "bot.jobs": {"bot.comfy", "bot.workflows"},
    "bot.community": {"bot.comfy", "bot.workflows", "bot.jobs"},
    "bot.ops": {"bot.comfy", "bot.workflows", "bot.jobs"},
    "bot.discord": {"bot.comfy", "bot.workflows", "bot.jobs", "bot.community", "bot.ops"},
    "bot.http": {"bot.comfy", "bot.workflows", "bot.jobs", "bot.community", "bot.ops"},
    "bot.terminal": {"bot.comfy", "bot.workflows", "bot.jobs", "bot.community", "bot.ops"},
}
# Packages that must not know Discord; of these, only bot.http and bot.ops serve HTTP.
NO_DISCORD = (
    "bot.comfy",
    "bot.workflows",
    "bot.jobs",
    "bot.community",
    "bot.terminal",
    "bot.http",
    "bot.ops",
)
SERVE_HTTP = ("bot.http", "bot.ops")
TOP_LEVEL_LIMIT = 8


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> set[str]:
    """Every absolute module a file imports, with `from a import b` also counted as `a.b`."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


MODULES = {module_name(p): p for p in (ROOT / "bot").rglob("*.py")}
MODULES.update({module_name(p): p for p in (ROOT / "cogs").rglob("*.py")})


def own_imports(module: str) -> set[str]:
    """The modules of ours that `module` imports (names of functions or classes dropped)."""
    return {name for name in imports(MODULES[module]) if name in MODULES and name != module}


def is_shared(module: str) -> bool:
    return module in SHARED or any(module.startswith(f"{s}.") for s in SHARED - {"bot"})


def package_of(module: str) -> str:
    return ".".join(module.split(".")[:2])


def test_the_walk_sees_every_package():
    packages = {package_of(m) for m in MODULES if m.startswith("bot.")}
    assert set(ALLOWED) <= packages


@pytest.mark.parametrize("module", sorted(m for m in MODULES if package_of(m) in ALLOWED))
def test_a_package_imports_only_the_layers_below_it(module):
    package = package_of(module)
    allowed = ALLOWED[package] | {package}
    for name in own_imports(module):
        if is_shared(name) or name.startswith("bot.__"):
            continue
        assert name.startswith("bot."), (module, name)
        assert package_of(name) in allowed, f"{module} imports {name}"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith(NO_DISCORD)))
def test_the_lower_layers_know_no_discord(module):
    names = imports(MODULES[module])
    assert not any(n.split(".")[0] == "discord" for n in names), module
    if not module.startswith(SERVE_HTTP):
        assert not any(n.startswith("aiohttp.web") for n in names), module


@pytest.mark.parametrize("module", sorted(m for m in MODULES if is_shared(m) and m != "bot"))
def test_the_shared_modules_import_only_comfy_errors(module):
    for name in own_imports(module):
        assert is_shared(name) or name.startswith("bot.comfy"), (module, name)


def test_nothing_in_bot_imports_cogs():
    for module, path in MODULES.items():
        if module.startswith("bot"):
            assert not any(n.split(".")[0] == "cogs" for n in imports(path)), module


def test_no_import_goes_round_in_a_circle():
    graph = {m: own_imports(m) for m in MODULES}
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for name in sorted(graph[module]):
            if state.get(name) == 1:
                cycle = [*path[path.index(name) :], name]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if name not in state:
                visit(name)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)


def test_the_top_of_bot_holds_few_modules():
    top = [p.name for p in (ROOT / "bot").glob("*.py")]
    assert len(top) <= TOP_LEVEL_LIMIT, sorted(top)
