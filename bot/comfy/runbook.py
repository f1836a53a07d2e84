"""RunBook: our prompts on one server by the id ComfyUI knows, and old ids mapped to UUIDs."""

from __future__ import annotations

from collections.abc import Iterator

from bot.comfy.ids import canonical_form
from bot.comfy.runs import PromptRun
from bot.comfy.stream import EventStream


class RunBook:
    """The prompts one backend follows; each is dropped once its outcome is known."""

    def __init__(self, stream: EventStream) -> None:
        self._stream = stream
        self._runs: dict[str, PromptRun] = {}
        self._aliases: dict[str, str] = {}  # an old-style id -> the UUID it was sent under

    def __len__(self) -> int:
        return len(self._runs)

    def __iter__(self) -> Iterator[PromptRun]:
        return iter(list(self._runs.values()))

    def get(self, wire: str) -> PromptRun | None:
        """Return the run ComfyUI knows by `wire`, if we follow it."""
        return self._runs.get(wire)

    def outstanding(self) -> list[PromptRun]:
        """Return the runs ComfyUI has acknowledged whose outcome is not known yet."""
        return [run for run in self._runs.values() if run.is_acknowledged and not run.is_done]

    def wire_id(self, prompt_id: str, *, requires_canonical: bool) -> str:
        """Return the id ComfyUI knows (or will know) one of our prompts by."""
        if prompt_id in self._aliases:
            return self._aliases[prompt_id]
        return canonical_form(prompt_id) if requires_canonical else prompt_id

    def alias(self, prompt_id: str, wire: str) -> None:
        """Remember that a prompt goes to ComfyUI under another id."""
        self._aliases[prompt_id] = wire

    def track(self, prompt_id: str, wire: str) -> PromptRun:
        """Subscribe to a prompt's events under the id ComfyUI knows it by."""
        if wire != prompt_id:
            self._aliases[prompt_id] = wire
        run = PromptRun(wire, self._stream.subscribe(wire))
        self._runs[wire] = run
        run.on_done(self._forget)
        return run

    def _forget(self, run: PromptRun) -> None:
        if self._runs.get(run.prompt_id) is run:
            del self._runs[run.prompt_id]
        for alias in [a for a, wire in self._aliases.items() if wire == run.prompt_id]:
            del self._aliases[alias]
