"""The runner's terminal: progress bar or plain progress lines, the y/N question, Ctrl+C."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from collections.abc import Callable
from typing import TextIO

from bot.jobs.progress import JobState, ProgressSnapshot, duration, meter

BAR_WIDTH = 24
# Above this many steps the plain (non-terminal) output prints one line per 10 %, not per step.
_STEPS_PER_LINE_LIMIT = 20
_CLEAR_LINE = "\r\x1b[K"


def bar(percent: float, width: int = BAR_WIDTH, *, fancy: bool = True) -> str:
    """Return a bar of `width` cells filled to `percent` (ASCII unless `fancy`)."""
    full, empty = ("█", "░") if fancy else ("#", "-")
    return meter(percent, width, full, empty)


def node_name(snap: ProgressSnapshot) -> str:
    """Return the running node as "title (Class)", or just the class when they are the same."""
    title, class_type = snap.node_title, snap.node_class
    if title and class_type and title != class_type:
        return f"{title} ({class_type})"
    return title or class_type or f"node {snap.node_id}"


def status_text(snap: ProgressSnapshot) -> str:
    """Return what the job is doing, without the bar."""
    match snap.state:
        case JobState.WAITING:
            return "waiting to be sent to ComfyUI"
        case JobState.QUEUED if snap.position:
            ahead = f"{snap.position} prompt{'s' if snap.position != 1 else ''} ahead"
            return f"queued in ComfyUI, {ahead}"
        case JobState.QUEUED:
            return "queued in ComfyUI"
        case JobState.RUNNING if snap.node_id is None:
            return "starting"
        case JobState.RUNNING:
            nodes = f" [{snap.nodes_done + 1}/{snap.nodes_total}]" if snap.nodes_total else ""
            return f"running{nodes} {node_name(snap)}"
    return str(snap.state)


def _details(snap: ProgressSnapshot, *, with_time: bool) -> str:
    parts = [f"step {snap.step}/{snap.steps}"] if snap.steps else []
    if snap.cached:
        parts.append(f"{snap.cached} cached")
    if snap.eta is not None and snap.eta >= 1:
        parts.append(f"~{duration(snap.eta)} left")
    if with_time:
        parts.append(duration(snap.elapsed))
    return " · ".join(parts)


class CtrlC:
    """Ctrl+C: the first press calls `on_first` (cancel what is going on), the second quits."""

    def __init__(self, on_first: Callable[[], None], *, exit_code: int) -> None:
        self.presses = 0
        self.default = on_first
        self.on_first = on_first
        self.exit_code = exit_code
        self.is_sent = False  # whether anything was sent to ComfyUI yet

    def press(self) -> None:
        """Handle one SIGINT."""
        self.presses += 1
        if self.presses > 1:
            # At once, as promised: no cleanup that could hang on an unresponsive server.
            sys.stdout.flush()
            sys.stderr.write("\nInterrupted again: quitting now.\n")
            sys.stderr.flush()
            os._exit(self.exit_code)
        self.on_first()


class ProgressView:
    """Show snapshots: one line redrawn in place on a terminal, a line per change elsewhere."""

    def __init__(self, stream: TextIO, *, is_tty: bool) -> None:
        self.stream = stream
        self.is_tty = is_tty
        self._fancy = (getattr(stream, "encoding", None) or "").lower().replace("-", "") == "utf8"
        self._last: ProgressSnapshot | None = None
        self._last_key: tuple[object, ...] | None = None
        self._drawn = False

    def show(self, snap: ProgressSnapshot) -> None:
        """Draw the bar (terminal) or print a line if the node, step or position changed."""
        self._last = snap
        if self.is_tty:
            self._draw(snap)
            return
        key = _line_key(snap)
        if key != self._last_key:
            self._last_key = key
            self._write(f"[{duration(snap.elapsed)}] {self.line(snap, with_time=False)}\n")

    def line(self, snap: ProgressSnapshot, *, with_time: bool = True) -> str:
        """Return the full progress line of a snapshot."""
        text = status_text(snap)
        if snap.state is JobState.RUNNING and snap.steps:
            text += f" {bar(snap.percent, fancy=self._fancy)} {snap.percent:3.0f}%"
        details = _details(snap, with_time=with_time)
        return f"{text} · {details}" if details else text

    def note(self, text: str) -> None:
        """Print a message on its own line, keeping the bar below it on a terminal."""
        is_live = self._last is not None and not self._last.state.is_final
        if self.is_tty and self._drawn:
            self._write(_CLEAR_LINE if is_live else "\n")
            self._drawn = False
        self._write(text + "\n")
        if self.is_tty and is_live and self._last is not None:
            self._draw(self._last)

    def close(self) -> None:
        """End the bar's line so that what follows starts on a fresh one."""
        if self.is_tty and self._drawn:
            self._write("\n")
            self._drawn = False

    def _draw(self, snap: ProgressSnapshot) -> None:
        columns = shutil.get_terminal_size((100, 24)).columns
        line = self.line(snap)
        # Stay within one row so that "\r" goes back to the start of the line; a terminal that
        # reports no size (a bare pty says 0) gets the whole line.
        self._write(_CLEAR_LINE + (line[: columns - 1] if columns > 20 else line))
        self._drawn = True

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()


def _line_key(snap: ProgressSnapshot) -> tuple[object, ...]:
    step = snap.step
    if snap.steps > _STEPS_PER_LINE_LIMIT:
        step = 10 * snap.step // snap.steps
    return (snap.state, snap.position, snap.node_id, step, snap.cached)


async def ask(question: str, *, stdin: TextIO, stdout: TextIO) -> bool:
    """Ask a yes/no question on a terminal without blocking the event loop; default no."""
    stdout.write(question)
    stdout.flush()
    loop = asyncio.get_running_loop()
    readable: asyncio.Future[None] = loop.create_future()
    fd = stdin.fileno()

    def on_readable() -> None:
        if not readable.done():
            readable.set_result(None)

    loop.add_reader(fd, on_readable)
    try:
        await readable
    finally:
        loop.remove_reader(fd)
    answer = stdin.readline()
    if not answer:  # end of input (Ctrl+D)
        stdout.write("\n")
    return answer.strip().lower() in {"y", "yes"}
