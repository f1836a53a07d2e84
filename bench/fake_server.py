"""Fake ComfyUI servers for benchmarks, in this process or each in its own subprocess.

As a script (`python bench/fake_server.py --step-delay S`) it serves one FakeComfy on 127.0.0.1,
prints its URL, then answers commands on stdin, one a line: "mark" starts measuring afresh,
"stats" prints what happened since the mark as JSON (see Stats), "clear" empties its input and
output folders (long runs with large uploads). End of input stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.fakes.comfy import FakeComfy  # noqa: E402

STARTUP_TIMEOUT = 30.0
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Stats:
    """What one fake saw since the mark."""

    requests: Counter[str]  # "GET /history", "POST /prompt", ...: method and first path segment
    cpu: float  # seconds of the fake's own process; 0 when it shares the caller's
    busy: float  # seconds spent running prompts (execution_start to execution_success)
    runs: int  # prompts that finished


class _Meter:
    """Measure one FakeComfy from a mark on, from inside its own process."""

    def __init__(self, fake: FakeComfy, *, is_own_process: bool) -> None:
        self.fake = fake
        self.is_own_process = is_own_process
        self.mark()

    def mark(self) -> None:
        self._requests = len(self.fake.requests)
        self._history = len(self.fake.history)
        self._cpu = time.process_time()

    def stats(self) -> Stats:
        requests = Counter(
            f"{method} /{path.strip('/').split('/', 1)[0]}"
            for method, path in self.fake.requests[self._requests :]
        )
        entries = list(self.fake.history.values())[self._history :]
        cpu = time.process_time() - self._cpu if self.is_own_process else 0.0
        return Stats(requests, cpu, sum(map(_run_seconds, entries)), len(entries))


def _run_seconds(entry: Mapping[str, Any]) -> float:
    stamps = {name: data.get("timestamp") for name, data in entry["status"]["messages"]}
    start, end = stamps.get("execution_start"), stamps.get("execution_success")
    return (end - start) / 1000 if start is not None and end is not None else 0.0


class FakeHandle:
    """One fake server as the benchmark sees it: its `url`, mark() and stats()."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def mark(self) -> None:
        """Start measuring from now."""
        raise NotImplementedError

    async def clear(self) -> None:
        """Empty the server's input and output folders (the files of prompts already run)."""
        raise NotImplementedError

    async def stats(self) -> Stats:
        """Return what happened since mark()."""
        raise NotImplementedError

    async def wait_stopped(self) -> str:
        """Wait until the server stops on its own, and say how it ended."""
        await asyncio.Event().wait()  # an in-process fake stops only when closed
        return "stopped"


class _InProcess(FakeHandle):
    def __init__(self, fake: FakeComfy) -> None:
        super().__init__(fake.url)
        self._fake = fake
        self._meter = _Meter(fake, is_own_process=False)

    async def mark(self) -> None:
        self._meter.mark()

    async def clear(self) -> None:
        _clear(self._fake)

    async def stats(self) -> Stats:
        return self._meter.stats()


class _Subprocess(FakeHandle):
    def __init__(self, url: str, process: asyncio.subprocess.Process) -> None:
        super().__init__(url)
        self._process = process

    async def _ask(self, command: str) -> str:
        assert self._process.stdin is not None
        assert self._process.stdout is not None
        self._process.stdin.write(f"{command}\n".encode())
        await self._process.stdin.drain()
        return (await self._process.stdout.readline()).decode()

    async def mark(self) -> None:
        await self._ask("mark")

    async def clear(self) -> None:
        await self._ask("clear")

    async def wait_stopped(self) -> str:
        return f"exited with {await self._process.wait()}"

    async def stats(self) -> Stats:
        data = json.loads(await self._ask("stats"))
        return Stats(Counter(data["requests"]), data["cpu"], data["busy"], data["runs"])

    async def stop(self) -> None:
        assert self._process.stdin is not None
        self._process.stdin.close()
        try:
            async with asyncio.timeout(10):
                await self._process.wait()
        except TimeoutError:
            self._process.kill()
            await self._process.wait()


async def while_alive(fakes: Sequence[FakeHandle], work: Awaitable[T]) -> T:
    """Await `work`, unless a fake server stops first (then raise RuntimeError)."""
    task = asyncio.ensure_future(work)
    stops = {asyncio.ensure_future(fake.wait_stopped()): fake for fake in fakes}
    try:
        await asyncio.wait([task, *stops], return_when=asyncio.FIRST_COMPLETED)
    finally:
        for stop in stops:
            stop.cancel()
    if not task.done():
        task.cancel()
        ended = [f"{fake.url} {stop.result()}" for stop, fake in stops.items() if stop.done()]
        raise RuntimeError(f"fake ComfyUI stopped mid-run: {', '.join(ended)}")
    return task.result()


async def _spawn(stack: AsyncExitStack, step_delay: float) -> FakeHandle:
    script = str(Path(__file__).resolve())
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, script, "--step-delay", str(step_delay)),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    try:
        async with asyncio.timeout(STARTUP_TIMEOUT):
            url = (await process.stdout.readline()).decode().strip()
    except BaseException:
        process.kill()
        await process.wait()
        raise
    handle = _Subprocess(url, process)
    stack.push_async_callback(handle.stop)
    if not url.startswith("http://"):
        raise RuntimeError(f"fake server did not start (said {url!r})")
    return handle


async def start_fakes(
    stack: AsyncExitStack, count: int, step_delay: float, *, in_process: bool = False
) -> list[FakeHandle]:
    """Start `count` fake servers that `stack` stops; previews off (the workflow asks none)."""
    if not in_process:
        return list(await asyncio.gather(*(_spawn(stack, step_delay) for _ in range(count))))
    fakes: list[FakeHandle] = []
    for _ in range(count):
        fake = FakeComfy(step_delay=step_delay, previews=False)
        fakes.append(_InProcess(await stack.enter_async_context(fake)))
    return fakes


def _clear(fake: FakeComfy) -> None:
    for kind in ("input", "output"):
        fake.files.folders[kind].clear()


async def _serve(step_delay: float) -> None:
    async with FakeComfy(step_delay=step_delay, previews=False) as fake:
        meter = _Meter(fake, is_own_process=True)
        print(fake.url, flush=True)
        while line := await asyncio.to_thread(sys.stdin.readline):
            match line.strip():
                case "mark":
                    meter.mark()
                    print("ok", flush=True)
                case "clear":
                    _clear(fake)
                    print("ok", flush=True)
                case "stats":
                    stats = meter.stats()
                    data = {"requests": stats.requests, "cpu": stats.cpu, "busy": stats.busy}
                    print(json.dumps({**data, "runs": stats.runs}), flush=True)
                case other:
                    print(json.dumps({"error": f"unknown command {other!r}"}), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--step-delay", type=float, default=0.01)
    asyncio.run(_serve(parser.parse_args().step_delay))
