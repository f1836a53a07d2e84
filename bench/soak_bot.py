"""Soak only: run `comfycord bot` against the soak's fakes, with a loop watchdog and a disk fault.

Started by bench/soak.py as its own process (so that it can be killed with SIGKILL). On top of
tests/bot_launcher.py (discord.py pointed at the fake Discord) it adds:

- a watchdog thread that pings the event loop every 20 ms and notes how long each ping waited
  (wall time, and the CPU time the loop's thread spent meanwhile: a ping that waits while the
  thread burns CPU is the loop blocked, one that waits without CPU is the machine busy); the
  figures and the stack of the longest busy stall go to SOAK_STATS (JSON) twice a second;
- the journal's disk refusing writes: after SIGUSR1 every journal write fails with SQLite's
  "disk I/O error" until SIGUSR2 (reads still work);
- SIGQUIT prints every thread's stack and every asyncio task's to stderr (bot.log), so that a
  bot that does not stop can say what it waits for.
"""

from __future__ import annotations

import asyncio
import faulthandler
import json
import os
import signal
import sqlite3
import sys
import threading
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bot import cli  # noqa: E402
from bot.jobs.store import JobStore, Work  # noqa: E402
from tests.bot_launcher import _point_at_fake  # noqa: E402

PING_EVERY = 0.02
WRITE_EVERY = 0.5
STALL = 0.1


class Watchdog:
    """Measure how long the event loop takes to run a callback scheduled from another thread."""

    def __init__(self, stats_path: Path) -> None:
        self.stats_path = stats_path
        self.loop: asyncio.AbstractEventLoop | None = None
        self.main_thread = threading.get_ident()
        self.figures: dict[str, Any] = {
            "pings": 0,
            "longest_stall": 0.0,
            "longest_busy_stall": 0.0,
            "stalls_over_100ms": 0,
            "busy_stalls_over_100ms": 0,
            "busy_stall_stack": "",
        }

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Watch `loop` from a daemon thread (it dies with the process)."""
        self.loop = loop
        threading.Thread(target=self._run, name="soak-watchdog", daemon=True).start()

    def _run(self) -> None:
        clock = time.pthread_getcpuclockid(self.main_thread)
        last_write = 0.0
        while True:
            time.sleep(PING_EVERY)
            self._ping(clock)
            if time.monotonic() - last_write >= WRITE_EVERY:
                last_write = time.monotonic()
                self._write()

    def _ping(self, clock: int) -> None:
        assert self.loop is not None
        answered = threading.Event()
        sent, cpu = time.monotonic(), time.clock_gettime(clock)
        try:
            self.loop.call_soon_threadsafe(answered.set)
        except RuntimeError:
            return  # the loop is closed: the bot is stopping
        stack = ""
        if not answered.wait(STALL):
            stack = _stack(sys._current_frames().get(self.main_thread))
            answered.wait()
        waited, busy = time.monotonic() - sent, time.clock_gettime(clock) - cpu
        figures = self.figures
        figures["pings"] += 1
        figures["longest_stall"] = max(figures["longest_stall"], waited)
        figures["stalls_over_100ms"] += waited > STALL
        busy_stall = min(waited, busy)
        figures["busy_stalls_over_100ms"] += busy_stall > STALL
        if busy_stall > figures["longest_busy_stall"]:
            figures["longest_busy_stall"] = busy_stall
            if stack:
                figures["busy_stall_stack"] = stack

    def _write(self) -> None:
        temporary = self.stats_path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.figures))
        temporary.replace(self.stats_path)


def _stack(frame: FrameType | None) -> str:
    return "".join(traceback.format_stack(frame)[-12:]) if frame is not None else ""


class WatchedPolicy(asyncio.DefaultEventLoopPolicy):
    """Hand every new event loop to the watchdog."""

    def __init__(self, watchdog: Watchdog) -> None:
        super().__init__()
        self._watchdog = watchdog

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        """Create the loop and start watching it."""
        loop = super().new_event_loop()
        self._watchdog.start(loop)
        return loop


def refuse_journal_writes_on_signal() -> None:
    """SIGUSR1: every journal call fails like a full or failing disk; SIGUSR2: it works again."""
    refusing = threading.Event()
    signal.signal(signal.SIGUSR1, lambda *_: refusing.set())
    signal.signal(signal.SIGUSR2, lambda *_: refusing.clear())
    original = JobStore.write  # every journal write goes through it; reads still work

    async def write(self: JobStore, works: Sequence[Work]) -> None:
        if refusing.is_set():
            raise sqlite3.OperationalError("disk I/O error (soak: the disk refuses writes)")
        await original(self, works)

    JobStore.write = write  # type: ignore[method-assign]  # soak-only fault switch


def dump_tasks_on_signal(watchdog: Watchdog) -> None:
    """SIGQUIT: print the stacks of every thread and of every task of the watched loop."""

    def dump(*_: object) -> None:
        faulthandler.dump_traceback(all_threads=True)
        loop = watchdog.loop
        tasks = asyncio.all_tasks(loop) if loop is not None and not loop.is_closed() else set()
        print(f"--- {len(tasks)} asyncio tasks ---", file=sys.stderr)
        for task in tasks:
            task.print_stack(limit=12, file=sys.stderr)
        sys.stderr.flush()

    signal.signal(signal.SIGQUIT, dump)


if __name__ == "__main__":
    _point_at_fake()
    refuse_journal_writes_on_signal()
    watchdog = Watchdog(Path(os.environ["SOAK_STATS"]))
    dump_tasks_on_signal(watchdog)
    asyncio.set_event_loop_policy(WatchedPolicy(watchdog))
    sys.exit(cli.main(["--env-file", os.devnull, "bot"]))
