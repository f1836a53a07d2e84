"""The `comfycord` console script: argument parsing only, each command lives in its own module."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence

from dotenv import load_dotenv

from bot import __version__
from bot.config import ConfigError, Settings
from bot.errors import EXIT_USAGE
from bot.ops.logs import setup_logging

# Command name -> (module, one-line help). Each module has `add_arguments(parser)` and
# `async def main(args, settings) -> int`.
COMMANDS: dict[str, tuple[str, str]] = {
    "bot": ("bot.discord.main", "run the Discord bot (the default)"),
    "run": ("bot.terminal.run", "run one workflow in the terminal with live progress"),
    "serve": ("bot.http.serve", "serve the HTTP middleware (default port 8189)"),
    "check": ("bot.terminal.check", "check settings, ComfyUI and every workflow"),
    "inspect": (
        "bot.terminal.inspect",
        "show what ComfyCord reads in a workflow and what it needs",
    ),
    "health": ("bot.ops.probe", "ask a running bot's /health (exit 0 when ok), for containers"),
}


def build_parser() -> argparse.ArgumentParser:
    """Return the parser with every command's arguments."""
    parser = argparse.ArgumentParser(
        prog="comfycord", description="ComfyUI for Discord, the terminal and HTTP."
    )
    parser.add_argument("--version", action="version", version=f"comfycord {__version__}")
    parser.add_argument("--env-file", default=".env", help="settings file to load (default .env)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, summary) in COMMANDS.items():
        sub = commands.add_parser(name, help=summary, description=summary)
        importlib.import_module(module).add_arguments(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, load settings once, and run the chosen command; return the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args([*argv, "bot"])
    command: str = args.command
    load_dotenv(args.env_file)
    try:
        settings = Settings.from_env(os.environ)
    except ConfigError as exc:
        _report_config(exc)
        return EXIT_USAGE
    setup_logging(settings)
    module = importlib.import_module(COMMANDS[command][0])
    try:
        with _stopping_on_sigterm():
            code: int = asyncio.run(module.main(args, settings))
    except ConfigError as exc:
        _report_config(exc)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    return code


@contextlib.contextmanager
def _stopping_on_sigterm() -> Iterator[None]:
    """Make SIGTERM (docker stop, Kubernetes, systemd by default) stop as Ctrl+C does: cleanly.

    asyncio.run turns SIGINT into a cancellation of the command, whose closing then runs;
    Python's default for SIGTERM would end the process on the spot. (`serve` installs its
    own handler for both.) The previous handler is back afterwards.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, lambda *_: signal.raise_signal(signal.SIGINT))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _report_config(exc: ConfigError) -> None:
    print("comfycord: the settings need fixing (in .env or the environment):", file=sys.stderr)
    for problem in exc.problems:
        print(f"  - {problem}", file=sys.stderr)
    print("See .env.example for every key, its meaning and its default.", file=sys.stderr)
