"""Fake ComfyUI servers for benchmarks, in this process or each in its own subprocess.

As a script (`python bench/fake_server.py --step-delay S`) it serves one FakeComfy on 127.0.0.1,
prints its URL, then answers commands on stdin, one a line: "mark" starts counting requests
afresh, "requests" prints those seen since the mark as JSON. End of input stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from contextlib import AsyncExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.fakes.comfy import FakeComfy  # noqa: E402

STARTUP_TIMEOUT = 30.0


class FakeHandle:
    """One fake server: `url`, and `requests` (method, path) seen between mark() and collect()."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.requests: list[tuple[str, str]] = []

    async def mark(self) -> None:
        """Start counting requests from now."""
        raise NotImplementedError

    async def collect(self) -> None:
        """Fill `requests` with those seen since mark()."""
        raise NotImplementedError


class _InProcess(FakeHandle):
    def __init__(self, fake: FakeComfy) -> None:
        super().__init__(fake.url)
        self._fake = fake
        self._mark = 0

    async def mark(self) -> None:
        self._mark = len(self._fake.requests)

    async def collect(self) -> None:
        self.requests = list(self._fake.requests[self._mark :])


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

    async def collect(self) -> None:
        self.requests = [(method, path) for method, path in json.loads(await self._ask("requests"))]

    async def stop(self) -> None:
        assert self._process.stdin is not None
        self._process.stdin.close()
        try:
            async with asyncio.timeout(10):
                await self._process.wait()
        except TimeoutError:
            self._process.kill()
            await self._process.wait()


async def _spawn(stack: AsyncExitStack, step_delay: float) -> FakeHandle:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(Path(__file__).resolve()),
        "--step-delay",
        str(step_delay),
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
    if not url.startswith("http://"):
        raise RuntimeError(f"fake server did not start (said {url!r})")
    handle = _Subprocess(url, process)
    stack.push_async_callback(handle.stop)
    return handle


async def start_fakes(
    stack: AsyncExitStack, count: int, step_delay: float, *, in_process: bool = False
) -> list[FakeHandle]:
    """Start `count` fake servers that `stack` stops; previews off (the workflow asks none)."""
    if not in_process:
        return list(await asyncio.gather(*(_spawn(stack, step_delay) for _ in range(count))))
    fakes = []
    for _ in range(count):
        fake = FakeComfy(step_delay=step_delay, previews=False)
        fakes.append(_InProcess(await stack.enter_async_context(fake)))
    return fakes


async def _serve(step_delay: float) -> None:
    async with FakeComfy(step_delay=step_delay, previews=False) as fake:
        print(fake.url, flush=True)
        mark = 0
        while line := await asyncio.to_thread(sys.stdin.readline):
            match line.strip():
                case "mark":
                    mark = len(fake.requests)
                    print("ok", flush=True)
                case "requests":
                    print(json.dumps(fake.requests[mark:]), flush=True)
                case other:
                    print(json.dumps({"error": f"unknown command {other!r}"}), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--step-delay", type=float, default=0.01)
    asyncio.run(_serve(parser.parse_args().step_delay))
