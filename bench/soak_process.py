"""Soak: the bot's own process (bench/soak_bot.py): start, SIGKILL, signals, RSS, fds, stalls."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.fakes.discord import FakeDiscord

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class Sample:
    """The bot process's memory and open files at one point of the run."""

    jobs: int
    pid: int
    rss_mib: float
    fds: int


class BotProcess:
    """Run `comfycord bot` in a child process; kill it, restart it, measure it."""

    def __init__(self, fake: FakeDiscord, env: dict[str, str], directory: Path) -> None:
        self.fake = fake
        self.env = env
        self.log = directory / "bot.log"
        self.stats_path = directory / "stats.json"
        self.process: asyncio.subprocess.Process | None = None
        self.starts = 0
        self.stall_figures: dict[str, Any] = {}
        self.stop_seconds = 0.0  # from the closing SIGINT to the exit

    @property
    def pid(self) -> int:
        """Return the running process's id."""
        assert self.process is not None
        return self.process.pid

    async def start(self) -> None:
        """Start the bot and wait until it is on the fake gateway."""
        env = self.env | {"SOAK_STATS": str(self.stats_path)}
        with self.log.open("ab") as output:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                str(ROOT / "bench" / "soak_bot.py"),
                cwd=ROOT,
                env=env,
                stdout=output,
                stderr=output,
            )
        self.starts += 1
        identified = len(self.fake.gateway.identifies)
        async with asyncio.timeout(START_TIMEOUT):
            # The fake gateway has no event for a new IDENTIFY; look four times a second.
            while len(self.fake.gateway.identifies) == identified or not self.fake.gateway.live:
                if self.process.returncode is not None:
                    raise RuntimeError(f"the bot exited with {self.process.returncode}")
                await asyncio.sleep(0.25)

    async def kill(self) -> None:
        """SIGKILL the bot: no cleanup, no last writes."""
        assert self.process is not None
        self.read_stalls()
        self.process.kill()
        await self.process.wait()

    async def stop(self) -> int:
        """Stop the bot with SIGINT (as Ctrl+C would) and return its exit code."""
        assert self.process is not None
        self.read_stalls()
        if self.process.returncode is None:
            since = time.monotonic()
            self.process.send_signal(signal.SIGINT)
            try:
                async with asyncio.timeout(STOP_TIMEOUT):
                    await self.process.wait()
            except TimeoutError:
                self.process.send_signal(signal.SIGQUIT)  # soak_bot.py: print what it waits for
                await asyncio.sleep(2.0)
                self.process.kill()
                await self.process.wait()
            self.stop_seconds = time.monotonic() - since
        return self.process.returncode or 0

    def refuse_journal_writes(self, *, is_refusing: bool) -> None:
        """Make the bot's journal fail every write (SIGUSR1), or work again (SIGUSR2)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGUSR1 if is_refusing else signal.SIGUSR2)

    def sample(self, jobs: int) -> Sample:
        """Return the process's resident memory and number of open file descriptors now."""
        pid = self.pid
        status = Path(f"/proc/{pid}/status").read_text()
        rss_kib = next(
            int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS")
        )
        return Sample(jobs, pid, rss_kib / 1024, len(os.listdir(f"/proc/{pid}/fd")))

    def read_stalls(self) -> None:
        """Merge the watchdog's figures of the running process into those of earlier ones."""
        try:
            figures = json.loads(self.stats_path.read_text())
        except (OSError, ValueError):
            return
        merged = self.stall_figures
        for key, value in figures.items():
            if key.endswith("stack"):
                continue
            if key.startswith("longest"):
                if value > merged.get(key, 0.0) and key == "longest_busy_stall":
                    merged["busy_stall_stack"] = figures.get("busy_stall_stack", "")
                merged[key] = max(merged.get(key, 0.0), value)
            else:
                merged[key] = merged.get(key, 0) + value
        self.stats_path.unlink(missing_ok=True)
