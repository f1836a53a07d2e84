"""The fake ComfyUI's executor: runs one prompt and emits ComfyUI's messages in ComfyUI's order."""

from __future__ import annotations

import asyncio
import hashlib
import json
import posixpath
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tests.fakes.comfy_catalog import Catalog
from tests.fakes.comfy_files import FileStore
from tests.fakes.comfy_graph import ExecutionOrder, ProgressState, signatures
from tests.fakes.comfy_images import (
    FakeImage,
    FakeLatent,
    ImageFactory,
    preview_frame,
    preview_metadata_frame,
    text_frame,
)
from tests.fakes.comfy_nodes import (
    FAIL_TRACEBACK,
    NODE_BEHAVIOURS,
    NodeError,
    NodeResult,
    StepRule,
    generic_outputs,
    preview_spec,
)
from tests.fakes.comfy_queue import QueueItem, RunOutcome
from tests.fakes.comfy_validate import is_link
from tests.fakes.comfy_ws import Hub

_PREVIEW_LETTERS = "abcdefghijklmnopqrstupvxyz"  # sic: ComfyUI's PreviewImage alphabet
_ALWAYS_CHANGED = frozenset({"SaveImageWebsocket"})  # IS_CHANGED returns time.time()


@dataclass(slots=True)
class RunSettings:
    """Knobs of the fake runner (fail_nodes is the FakeComfy's live set)."""

    step_delay: float
    previews: bool  # the start-up flag: latent previews on (auto) or off (none)
    preview_size: int
    fail_nodes: set[str]
    step_rules: Mapping[str, StepRule]
    honours_preview_method: bool = False  # 0.38: extra_data.preview_method per prompt


class _Interrupted(Exception):
    def __init__(self, node_id: str) -> None:
        super().__init__(node_id)
        self.node_id = node_id


class _Failed(Exception):
    def __init__(self, node_id: str, error: NodeError, inputs: dict[str, Any]) -> None:
        super().__init__(error.message)
        self.node_id = node_id
        self.error = error
        self.inputs = inputs


class Executor:
    """Runs prompts one at a time, with ComfyUI's cache of node outputs between prompts."""

    def __init__(
        self,
        catalog: Catalog,
        files: FileStore,
        hub: Hub,
        settings: RunSettings,
        gate: asyncio.Event,
    ) -> None:
        self.catalog = catalog
        self.files = files
        self.hub = hub
        self.settings = settings
        self.gate = gate
        self.images = ImageFactory()
        self.cache: dict[str, NodeResult] = {}
        self.client_id: str | None = None
        self.last_node_id: str | None = None
        self.interrupted = False
        self.free_requested = False
        self.preview_suffixes: dict[str, str] = {}

    def reconnect_node(self, sid: str) -> str | None:
        """Return the node to announce to a socket reconnecting with its prompt's clientId."""
        return self.last_node_id if self.client_id == sid else None

    def latent_previews(self, extra_data: dict[str, Any]) -> bool:
        """Tell whether a prompt gets sampler previews: the start-up flag, or (0.38) its own."""
        method = extra_data.get("preview_method")
        if not self.settings.honours_preview_method or method in (None, "default"):
            return self.settings.previews
        return method in ("auto", "latent2rgb", "taesd")

    def preview_suffix(self, node_id: str) -> str:
        """Return the random part of a PreviewImage node's temp file names."""
        if node_id not in self.preview_suffixes:
            letters = random.choices(_PREVIEW_LETTERS, k=5)
            self.preview_suffixes[node_id] = "".join(letters)
        return self.preview_suffixes[node_id]

    def is_changed(self, prompt: dict[str, Any], node_id: str) -> str:
        """Return the node class's IS_CHANGED: a file hash for LoadImage, "" for most nodes."""
        node = prompt[node_id]
        if node["class_type"] in _ALWAYS_CHANGED:
            return str(time.time_ns())
        if node["class_type"] not in ("LoadImage", "LoadImageMask"):
            return ""
        data = self.files.read_annotated(str(node["inputs"].get("image")))
        return hashlib.sha256(data).hexdigest() if data is not None else "missing"

    async def execute(self, item: QueueItem) -> RunOutcome:
        """Run one prompt to success, error or interrupt."""
        self.interrupted = False
        self.client_id = item.client_id
        if self.free_requested:
            self.cache.clear()
            self.free_requested = False
        run = _Run(self, item)
        try:
            return await run.execute()
        finally:
            self.last_node_id = None


class _Run:
    def __init__(self, executor: Executor, item: QueueItem) -> None:
        self.ex = executor
        self.item = item
        self.prompt = item.prompt
        self.prompt_id = item.prompt_id
        self.sid = item.client_id
        self.progress = ProgressState(item.prompt_id)
        self.messages: list[list[Any]] = []
        self.executed: list[str] = []
        self.keys = signatures(
            self.prompt, lambda node_id: executor.is_changed(self.prompt, node_id)
        )

    def message(self, event: str, data: dict[str, Any], *, broadcast: bool = False) -> None:
        data = {**data, "timestamp": int(time.time() * 1000)}
        self.messages.append([event, data])
        if self.sid is not None or broadcast:
            self.ex.hub.send(event, data, self.sid)

    def cached(self, node_id: str) -> NodeResult | None:
        return self.ex.cache.get(self.keys[node_id])

    async def execute(self) -> RunOutcome:
        ex, prompt_id = self.ex, self.prompt_id
        self.message("execution_start", {"prompt_id": prompt_id})
        live = set(self.keys.values())
        ex.cache = {key: value for key, value in ex.cache.items() if key in live}
        cached = [node_id for node_id in self.prompt if self.cached(node_id) is not None]
        self.message("execution_cached", {"nodes": cached, "prompt_id": prompt_id})
        order = ExecutionOrder(
            self.prompt,
            lambda node_id: ex.catalog.is_output(self.prompt[node_id]["class_type"]),
            lambda node_id: self.cached(node_id) is not None,
        )
        for output in self.item.outputs:
            order.add(output)
        success = False
        try:
            while (node_id := order.pick()) is not None:
                await self.node(node_id)
                order.complete(node_id)
            success = True
            self.message("execution_success", {"prompt_id": prompt_id})
        except _Interrupted as exc:
            self.message("execution_interrupted", self._where(exc.node_id), broadcast=True)
        except _Failed as exc:
            self.message("execution_error", self._error(exc))
        return self._outcome(success)

    def _where(self, node_id: str) -> dict[str, Any]:
        return {
            "prompt_id": self.prompt_id,
            "node_id": node_id,
            "node_type": self.prompt[node_id]["class_type"],
            "executed": list(self.executed),
        }

    def _error(self, exc: _Failed) -> dict[str, Any]:
        return {
            **self._where(exc.node_id),
            "exception_message": exc.error.message,
            "exception_type": exc.error.exception_type,
            "traceback": exc.error.traceback,
            "current_inputs": {name: [_describe(v)] for name, v in exc.inputs.items()},
            "current_outputs": list(self.prompt),
        }

    def _outcome(self, success: bool) -> RunOutcome:
        outcome = RunOutcome(success, self.messages)
        for node_id in self.prompt:
            result = self.cached(node_id)
            if result is not None and result.ui:
                outcome.outputs[node_id] = result.ui
                outcome.meta[node_id] = {
                    "node_id": node_id,
                    "display_node": node_id,
                    "parent_node": None,
                    "real_node_id": node_id,
                }
        return outcome

    async def node(self, node_id: str) -> None:
        hub, sid = self.ex.hub, self.sid
        result = self.cached(node_id)
        if result is not None:
            if sid is not None:
                hub.send("executed", self._executed(node_id, result.ui or None), sid)
            hub.send("progress_state", self.progress.finish(node_id), sid)
            return
        await self.ex.gate.wait()
        hub.send("progress_state", self.progress.start(node_id), sid)
        if sid is not None:
            self.ex.last_node_id = node_id
            data = {"node": node_id, "display_node": node_id, "prompt_id": self.prompt_id}
            hub.send("executing", data, sid)
        self.check_interrupt(node_id)
        result = await self._run_node(node_id)
        self.ex.cache[self.keys[node_id]] = result
        self.executed.append(node_id)
        if result.ui and sid is not None:
            hub.send("executed", self._executed(node_id, result.ui), sid)
        hub.send("progress_state", self.progress.finish(node_id), sid)

    def _executed(self, node_id: str, ui: dict[str, Any] | None) -> dict[str, Any]:
        return {"node": node_id, "display_node": node_id, "output": ui, "prompt_id": self.prompt_id}

    async def _run_node(self, node_id: str) -> NodeResult:
        node = self.prompt[node_id]
        class_type = node["class_type"]
        inputs = {name: self._resolve(value) for name, value in node["inputs"].items()}
        context = _NodeContext(self, node_id, class_type, inputs)
        settings = self.ex.settings
        try:
            if class_type in settings.fail_nodes:
                message = f"{class_type} was told to fail (FakeComfy.fail_nodes)\n"
                raise NodeError("RuntimeError", message, FAIL_TRACEBACK)
            rule = settings.step_rules.get(class_type)
            if rule is not None:
                await self._steps(context, rule(node["inputs"], self.prompt))
            else:
                await asyncio.sleep(settings.step_delay)
            behaviour = NODE_BEHAVIOURS.get(class_type)
            if behaviour is not None:
                return await behaviour(context)
            return generic_outputs(context, self.ex.catalog.outputs(class_type))
        except NodeError as exc:
            raise _Failed(node_id, exc, inputs) from exc

    async def _steps(self, context: _NodeContext, total: int) -> None:
        fmt, size = preview_spec(context.class_type, context.inputs)
        if size is None and not self.ex.latent_previews(self.item.extra_data):
            fmt = None
        source = _preview_source(context.inputs).scaled_to(size or self.ex.settings.preview_size)
        for value in range(1, total + 1):
            await context.step(value, total, (fmt, source) if fmt else None)

    def _resolve(self, value: Any) -> Any:
        if not is_link(value) or value[0] not in self.prompt:
            return value
        result = self.cached(value[0])
        outputs = result.outputs if result is not None else ()
        index = int(value[1])
        return outputs[index] if index < len(outputs) else None

    def check_interrupt(self, node_id: str) -> None:
        if self.ex.interrupted:
            self.ex.interrupted = False
            raise _Interrupted(node_id)


class _NodeContext:
    def __init__(self, run: _Run, node_id: str, class_type: str, inputs: dict[str, Any]) -> None:
        self.run = run
        self.node_id = node_id
        self.class_type = class_type
        self.inputs = inputs

    async def step(self, value: int, total: int, preview: tuple[str, FakeImage] | None) -> None:
        run, ex = self.run, self.run.ex
        await asyncio.sleep(ex.settings.step_delay)
        await ex.gate.wait()
        run.check_interrupt(self.node_id)
        sid = run.sid
        ex.hub.send("progress_state", run.progress.update(self.node_id, value, total), sid)
        frame = ex.images.preview(preview[0], preview[1]) if preview else None
        with_metadata = ex.hub.supports_metadata(sid)
        if preview and frame and with_metadata:
            ex.hub.send_bytes(preview_metadata_frame(preview[0], frame, self._meta()), sid)
        data = {"value": value, "max": total, "prompt_id": run.prompt_id, "node": self.node_id}
        ex.hub.send("progress", data, sid)
        if preview and frame and not with_metadata:
            ex.hub.send_bytes(preview_frame(preview[0], frame), sid)

    def _meta(self) -> dict[str, Any]:
        node_id = self.node_id
        return {
            "node_id": node_id,
            "prompt_id": self.run.prompt_id,
            "display_node_id": node_id,
            "parent_node_id": None,
            "real_node_id": node_id,
        }

    async def text(self, text: str) -> None:
        self.run.ex.hub.send_bytes(text_frame(self.node_id, text), None)

    def read_input(self, name: str) -> bytes | None:
        return self.run.ex.files.read_annotated(name)

    def save_file(self, prefix: str, suffix: str, data: bytes) -> dict[str, str]:
        files = self.run.ex.files
        subfolder, name = posixpath.split(posixpath.normpath(prefix))
        filename = f"{name}_{files.next_counter('output', subfolder, name):05}_{suffix}"
        files.put("output", posixpath.join(subfolder, filename), data)
        return {"filename": filename, "subfolder": subfolder, "type": "output"}

    def save(self, kind: str, prefix: str, image: FakeImage) -> list[dict[str, str]]:
        ex = self.run.ex
        if kind == "temp":
            prefix = f"{prefix}_temp_{ex.preview_suffix(self.node_id)}"
        subfolder, name = posixpath.split(posixpath.normpath(prefix))
        if subfolder.startswith(("/", "..")):
            message = "Saving image outside the output folder is not allowed.\n"
            raise NodeError("Exception", message, FAIL_TRACEBACK[:4])
        pnginfo = {"prompt": json.dumps(self.run.prompt)}
        extra = self.run.item.extra_data.get("extra_pnginfo")
        if isinstance(extra, dict):
            pnginfo.update({key: json.dumps(value) for key, value in extra.items()})
        data = ex.images.png(image, text=pnginfo)
        counter = ex.files.next_counter(kind, subfolder, name)
        entries = []
        for index in range(image.batch):
            filename = f"{name}_{counter + index:05}_.png"
            ex.files.put(kind, posixpath.join(subfolder, filename), data)
            entries.append({"filename": filename, "subfolder": subfolder, "type": kind})
        return entries


def _preview_source(inputs: dict[str, Any]) -> FakeImage:
    for value in inputs.values():
        if isinstance(value, FakeImage):
            return value
        if isinstance(value, FakeLatent):
            return value.decoded()
    return FakeImage(64, 64)


def _describe(value: Any) -> str:
    if isinstance(value, FakeImage):
        return f"tensor(<{value.batch}x{value.height}x{value.width}x3 image>)"
    if isinstance(value, FakeLatent):
        return f"{{'samples': tensor(<{value.batch}x4x{value.height // 8}x{value.width // 8}>)}}"
    return str(value)
