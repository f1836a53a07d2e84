"""`comfycord run`: one workflow from the terminal, on the same JobQueue as the bot.

Exit codes: 0 success; 1 the workflow failed in ComfyUI (execution error, refused, lost);
2 bad input or usage; 3 ComfyUI unreachable; 4 the outputs could not be saved; 130
interrupted (Ctrl+C).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Iterator

import aiohttp

from bot.comfy.client import ComfyClient
from bot.comfy.errors import ComfyError, ComfyUnavailable, ProtocolError
from bot.comfy.urls import shown_url
from bot.config import Settings
from bot.errors import EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE, BotError, user_message
from bot.jobs.engine import Engine
from bot.jobs.model import JobResult
from bot.jobs.progress import JobState, duration
from bot.terminal.follow import follow
from bot.terminal.plan import Plan, converter_for, prepare, summary_lines
from bot.terminal.save import OutputsNotSaved, save_outputs
from bot.terminal.view import CtrlC, ask
from bot.workflows.library import WorkflowLibrary, validate

EXIT_FAILED = 1
EXIT_NOT_SAVED = 4
EXIT_INTERRUPTED = 130


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the runner's arguments."""
    parser.add_argument("workflow", metavar="WORKFLOW", help="a name in WORKFLOWS_DIR or a file")
    parser.add_argument("--prompt", help="the positive prompt text")
    parser.add_argument("--negative", help="the negative prompt text")
    parser.add_argument(
        "--image", action="append", default=[], metavar="PATH", help="an input image (repeatable)"
    )
    for name in ("seed", "steps", "width", "height"):
        parser.add_argument(f"--{name}", type=int, metavar="N")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        dest="overrides",
        metavar="NODE.INPUT=VALUE",
        help="set any node input, e.g. --set 3.cfg=7.5 (repeatable)",
    )
    parser.add_argument("--server", metavar="URL", help="ComfyUI's URL (default COMFYUI_URL)")
    parser.add_argument("--out", metavar="DIR", help="where to save outputs (default OUTPUT_DIR)")
    parser.add_argument("-y", "--yes", action="store_true", help="run without asking to confirm")
    parser.add_argument("-v", "--verbose", action="store_true", help="show log lines too")


async def main(args: argparse.Namespace, settings: Settings) -> int:
    """Run one workflow with live progress; return the exit code."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None

    def stop() -> None:
        task.cancel()

    ctrl = CtrlC(stop, exit_code=EXIT_INTERRUPTED)
    # Only the main thread of a Unix process can take signals this way; elsewhere Ctrl+C
    # keeps Python's default behaviour.
    with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
        loop.add_signal_handler(signal.SIGINT, ctrl.press)
    try:
        with _quiet_logs(enabled=not args.verbose):
            return await _run(args, settings, ctrl)
    except asyncio.CancelledError:
        if ctrl.presses == 0 or task.uncancel() > 0:
            raise
        print("\nInterrupted." if ctrl.is_sent else "\nInterrupted: nothing was sent to ComfyUI.")
        return EXIT_INTERRUPTED
    finally:
        with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
            loop.remove_signal_handler(signal.SIGINT)


async def _run(args: argparse.Namespace, settings: Settings, ctrl: CtrlC) -> int:
    converter = await converter_for(args, settings)
    try:
        plan = await asyncio.to_thread(prepare, args, settings, converter)
    except BotError as exc:
        return _fail(user_message(exc), EXIT_USAGE)
    library = WorkflowLibrary({plan.workflow.name: plan.workflow})
    async with aiohttp.ClientSession() as http:
        client = ComfyClient(plan.server, session=http, timeout=settings.request_timeout)
        code = await _get_ready(plan, client, assume_yes=args.yes)
        if code is not None:
            return code
        engine = Engine(settings, library, urls=[plan.server], session=http, max_per_user=1)
        async with engine:
            try:
                async with asyncio.timeout(settings.request_timeout):
                    await engine.backends[0].stream.wait_connected()
            except TimeoutError:
                return _fail(
                    f"ComfyUI at {client.shown_url} answers HTTP, but its WebSocket "
                    f"({shown_url(client.ws_url.split('?')[0])}) did not open.",
                    EXIT_UNREACHABLE,
                )
            await engine.backends[0].check()  # (once: the connect's own check is shared)
            try:  # its upload limit is known now: an image over it is never sent
                engine.jobs.placement.check_images(plan.workflow, plan.request.images)
            except BotError as exc:
                return _fail(user_message(exc), EXIT_USAGE)
            ctrl.is_sent = True
            job = engine.jobs.submit(plan.request)
            result = await follow(job, engine.jobs, ctrl)
    return await _finish(result, plan, ctrl)


async def _get_ready(plan: Plan, client: ComfyClient, *, assume_yes: bool) -> int | None:
    """Check the server, validate the graph on it, show the summary and confirm."""
    try:
        stats = await client.system_stats()
    except ComfyError as exc:
        return _unreachable(plan.server, exc)
    version = stats.version
    try:
        problems = validate(plan.graph, await client.object_info())
    except ComfyUnavailable as exc:
        return _unreachable(plan.server, exc)
    except ComfyError as exc:
        print(f"Note: could not check the workflow against the server ({exc}).", file=sys.stderr)
        problems = []
    if problems:
        lines = [f"ComfyUI at {plan.server} cannot run {plan.workflow.path.name}:"]
        lines += [f"  - {problem}" for problem in problems]
        return _fail("\n".join(lines), EXIT_USAGE)
    server = f"{plan.server} (ComfyUI {version})" if version else plan.server
    print("\n".join(summary_lines(plan, server)))
    if assume_yes:
        return None
    if not sys.stdin.isatty():
        return _fail(
            "Not asking for confirmation: standard input is not a terminal."
            " Pass --yes to run without confirming.",
            EXIT_USAGE,
        )
    if not await ask("Run it? [y/N] ", stdin=sys.stdin, stdout=sys.stdout):
        print("Not run; nothing was sent to ComfyUI.")
        return EXIT_OK
    return None


async def _finish(result: JobResult, plan: Plan, ctrl: CtrlC) -> int:
    match result.state:
        case JobState.DONE:
            try:
                saved = await asyncio.to_thread(save_outputs, result.outputs, plan.out)
            except OutputsNotSaved as exc:
                return _fail(f"Could not save the outputs. {exc.user_message}", EXIT_NOT_SAVED)
            seed = plan.request.seed
            print(
                f"Done in {duration(result.elapsed)}"
                + (f" (seed {seed})." if seed is not None else ".")
            )
            print("\n".join(f"Saved {path}" for path in saved) or "The workflow saved no files.")
            return EXIT_OK
        case JobState.CANCELLED if ctrl.presses:
            return EXIT_INTERRUPTED
        case JobState.CANCELLED:
            return _fail("The prompt was interrupted in ComfyUI (not by us).", EXIT_FAILED)
        case JobState.FAILED if (failure := result.failure) is not None:
            node = f"node {failure.node_id} ({failure.node_type})"
            return _fail(
                f"Failed at {node}: {failure.exception_type}: {failure.message.strip()}",
                EXIT_FAILED,
            )
        case JobState.FAILED if isinstance(result.error, ProtocolError):
            # Here the user is the admin: the details are theirs to see.
            return _fail(f"ComfyUI answered unlike ComfyUI: {result.error}", EXIT_FAILED)
        case JobState.FAILED if isinstance(result.error, ComfyUnavailable):
            return _unreachable(plan.server, result.error)
        case JobState.FAILED if result.error is not None:
            return _fail(user_message(result.error), EXIT_FAILED)
    return _fail("ComfyUI lost the prompt (was it restarted?).", EXIT_FAILED)


def _unreachable(url: str, exc: BaseException) -> int:
    url = shown_url(url)
    detail = exc.reason if isinstance(exc, ComfyUnavailable) else str(exc)
    return _fail(
        f"ComfyUI at {url} is not reachable ({detail}).\n"
        "Start ComfyUI, or point COMFYUI_URL (or --server) at it.",
        EXIT_UNREACHABLE,
    )


def _fail(message: str, code: int) -> int:
    print(f"comfycord run: {message}", file=sys.stderr)
    return code


@contextlib.contextmanager
def _quiet_logs(*, enabled: bool) -> Iterator[None]:
    """Keep INFO log lines of `bot` off the terminal while the bar is drawn."""
    logger = logging.getLogger("bot")
    level = logger.level
    if enabled and logger.getEffectiveLevel() < logging.WARNING:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)
