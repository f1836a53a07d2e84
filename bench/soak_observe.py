"""Soak: what members see, read off every call the fake Discord answers (no polling).

Each message body the bot sends or edits names its job in its buttons
(`comfycord:<action>:<job_id>`); the content's mark says whether the job ended (✅ done,
❌ error, 🚫 cancelled, ⚠️ lost) and a result carries the job's PNG with the footer `job <id>`.
"""

from __future__ import annotations

import asyncio
import re
from collections import defaultdict
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.discord import RecordedCall
from tests.fakes.discord_messages import walk

FLAG_EPHEMERAL = 1 << 6
PNG_MAGIC = b"\x89PNG"
FINAL_MARKS = {"✅": "done", "❌": "error", "🚫": "cancelled", "⚠️": "lost"}
_BUTTON = re.compile(r"comfycord:(?:cancel|reroll|retry):(?P<job>[A-Za-z0-9_-]+)$")
_CANCELLED_BY = re.compile(r"🚫 Cancelled by <@(?P<user>\d+)>")
_TOKEN = re.compile(r"^/(?:webhooks/\d+|interactions/\d+)/(?P<token>[^/]+)")


@dataclass
class SeenJob:
    """One job as members saw it."""

    id: str
    messages: list[int] = field(default_factory=list)  # in the order they showed the job
    finals: list[str] = field(default_factory=list)  # each change of final kind, in order
    results: list[int] = field(default_factory=list)  # messages a result was posted to
    cancelled_by: str | None = None
    trail: list[str] = field(default_factory=list)  # each body shown, for the report

    @property
    def final(self) -> str | None:
        """Return the last final state shown, or None while the job has not ended."""
        return self.finals[-1] if self.finals else None


class Observer:
    """Keep what each job, message and interaction token showed; wake whoever waits on it."""

    def __init__(self) -> None:
        self.jobs: dict[str, SeenJob] = {}
        self.message_jobs: dict[int, list[str]] = defaultdict(list)  # job ids, in order shown
        self.told: dict[str, list[str]] = defaultdict(list)  # token -> ephemeral texts
        self.replies: dict[int, int] = {}  # a member's message -> the bot's reply to it
        self.reply_texts: dict[int, str] = {}
        self.unreferenced: set[int] = set()  # channel messages the bot posted on its own
        self.calls = 0
        self._waiters: dict[Hashable, list[asyncio.Future[None]]] = defaultdict(list)

    def __call__(self, call: RecordedCall) -> None:
        """Read one answered call (the fake's observer hook)."""
        self.calls += 1
        if call.status != 200 or not isinstance(call.response, dict):
            return
        body = call.response
        message = (body.get("resource") or {}).get("message") if "interaction" in body else body
        token = _token(call.path)
        flags = int(((call.json or {}).get("data") or call.json or {}).get("flags") or 0)
        if token and flags & FLAG_EPHEMERAL:
            text = ((call.json or {}).get("data") or call.json or {}).get("content") or ""
            self.told[token].append(text)
            self._wake(("told", token))
        if isinstance(message, dict) and "id" in message and "content" in message:
            self._message(call, message)

    def _message(self, call: RecordedCall, message: dict[str, Any]) -> None:
        message_id = int(message["id"])
        reference = message.get("message_reference") or {}
        if call.method == "POST" and call.path.startswith("/channels/"):
            if reference.get("message_id"):
                self.replies[int(reference["message_id"])] = message_id
                self.reply_texts[message_id] = message.get("content") or ""
                self._wake(("reply", int(reference["message_id"])))
            else:
                self.unreferenced.add(message_id)
        job_id = _job_of(message)
        if job_id is None:
            return
        job = self.jobs.setdefault(job_id, SeenJob(job_id))
        shown = self.message_jobs[message_id]
        if not shown or shown[-1] != job_id:
            shown.append(job_id)
            self._wake(("message", message_id))
        if message_id not in job.messages:
            job.messages.append(message_id)
        content = message.get("content") or ""
        files = [(name, data[:4]) for name, data, _ in call.files]
        footers = [(e.get("footer") or {}).get("text") for e in message.get("embeds") or []]
        job.trail.append(f"{call.method} {call.path} {files} {footers} {content[-40:]!r}")
        kind = next((k for mark, k in FINAL_MARKS.items() if mark in content), None)
        if kind is not None and job.final != kind:
            job.finals.append(kind)
            if found := _CANCELLED_BY.search(content):
                job.cancelled_by = found["user"]
            self._wake(("final", job_id))
        if _is_result(call, message, job_id):
            job.results.append(message_id)

    def _wake(self, key: Hashable) -> None:
        for future in self._waiters.pop(key, []):
            if not future.done():
                future.set_result(None)

    async def _wait(self, key: Hashable, is_ready: Any, timeout: float) -> None:
        async with asyncio.timeout(timeout):
            while not is_ready():
                future = asyncio.get_running_loop().create_future()
                self._waiters[key].append(future)
                await future

    async def job_on(self, message_id: int, timeout: float, *, other_than: str = "") -> str:
        """Wait until a message shows a job (other than `other_than`) and return its id."""
        shown = self.message_jobs[message_id]
        await self._wait(
            ("message", message_id), lambda: bool(shown) and shown[-1] != other_than, timeout
        )
        return shown[-1]

    async def final_of(self, job_id: str, timeout: float) -> str:
        """Wait until the job shows a final state and return it."""
        await self._wait(("final", job_id), lambda: self._final(job_id) is not None, timeout)
        final = self._final(job_id)
        assert final is not None
        return final

    def _final(self, job_id: str) -> str | None:
        job = self.jobs.get(job_id)
        return job.final if job else None

    async def told_to(self, token: str, timeout: float) -> str:
        """Wait until the interaction got an ephemeral message and return its text."""
        await self._wait(("told", token), lambda: bool(self.told.get(token)), timeout)
        return self.told[token][0]

    async def reply_to(self, message_id: int, timeout: float) -> int:
        """Wait until the bot replied to a member's message and return the reply's id."""
        await self._wait(("reply", message_id), lambda: message_id in self.replies, timeout)
        return self.replies[message_id]


def _token(path: str) -> str | None:
    found = _TOKEN.match(path)
    return found["token"] if found else None


def _job_of(message: dict[str, Any]) -> str | None:
    jobs = set()
    for component in walk(message.get("components") or []):
        if found := _BUTTON.match(component.get("custom_id") or ""):
            jobs.add(found["job"])
    return jobs.pop() if len(jobs) == 1 else None


def _is_result(call: RecordedCall, message: dict[str, Any], job_id: str) -> bool:
    footers = [((e.get("footer") or {}).get("text") or "") for e in message.get("embeds") or []]
    has_png = any(data.startswith(PNG_MAGIC) for _, data, _ in call.files)
    return has_png and f"job {job_id}" in footers
