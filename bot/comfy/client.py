"""ComfyClient: ComfyUI's HTTP API over aiohttp, every call with a timeout and typed errors."""

from __future__ import annotations

import json
import logging
import mimetypes
import re
import uuid
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any, Self

import aiohttp
from yarl import URL

from bot.comfy.errors import ComfyHTTPError, ComfyUnavailable, PromptRejected, ProtocolError
from bot.comfy.events import OutputFile
from bot.comfy.models import (
    HistoryEntry,
    QueueSnapshot,
    Submitted,
    UploadedImage,
    node_errors_from,
)
from bot.comfy.urls import redact, shown_url

log = logging.getLogger(__name__)

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def new_prompt_id() -> str:
    """Return a fresh prompt id of ours; ComfyUI accepts client-chosen ids as given."""
    return f"comfycord-{uuid.uuid4().hex}"


def unique_upload_name(filename: str) -> str:
    """Return a collision-free, path-free upload name that keeps the original extension."""
    stem, dot, ext = filename.rpartition("/")[2].rpartition("\\")[2].rpartition(".")
    if not dot:
        stem, ext = ext, "png"
    stem = _SAFE_NAME.sub("_", stem).strip("._")[:40] or "image"
    ext = _SAFE_NAME.sub("", ext)[:8].lower() or "png"
    return f"comfycord_{uuid.uuid4().hex[:16]}_{stem}.{ext}"


class ComfyClient:
    """Talk to one ComfyUI server over HTTP.

    The aiohttp session may be injected; the client closes only a session it created.
    """

    def __init__(
        self,
        base_url: str,
        *,
        session: aiohttp.ClientSession | None = None,
        client_id: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.base_url = URL(base_url.rstrip("/"))
        self.client_id = client_id or uuid.uuid4().hex
        self._session = session
        self._owns_session = session is None
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    def __repr__(self) -> str:
        return f"ComfyClient({self.shown_url!r}, client_id={self.client_id!r})"

    @property
    def shown_url(self) -> str:
        """Return the base URL as it may be shown: without user or password."""
        return shown_url(self.base_url)

    @property
    def ws_url(self) -> str:
        """Return the WebSocket URL of this client's event stream."""
        scheme = "wss" if self.base_url.scheme == "https" else "ws"
        url = self.base_url.with_scheme(scheme) / "ws"
        return str(url.with_query(clientId=self.client_id))

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP session if this client created it."""
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def _request(
        self, method: str, path: str, *, ok: Iterable[int] = (200,), **kwargs: Any
    ) -> tuple[int, bytes, str]:
        url = self.base_url.with_path(self.base_url.path.rstrip("/") + path)
        try:
            async with self._http().request(method, url, timeout=self._timeout, **kwargs) as resp:
                body = await resp.read()
                status, content_type = resp.status, resp.content_type
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            reason = (
                "timed out" if isinstance(exc, TimeoutError) else str(exc) or type(exc).__name__
            )
            raise ComfyUnavailable(
                f"ComfyUI at {self.shown_url} is unreachable: {redact(reason)}"
            ) from exc
        if status not in ok:
            raise ComfyHTTPError(method, path, status, body.decode("utf-8", "replace"))
        return status, body, content_type

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        _, body, _ = await self._request(method, path, **kwargs)
        return _decode(body, path)

    async def submit(
        self,
        prompt: Mapping[str, Any],
        *,
        prompt_id: str | None = None,
        front: bool = False,
        extra_data: Mapping[str, Any] | None = None,
    ) -> Submitted:
        """Queue a prompt under our client_id and a prompt_id chosen here.

        Raises:
            PromptRejected: ComfyUI refused the prompt; nothing was queued.
        """
        payload: dict[str, Any] = {
            "prompt": prompt,
            "client_id": self.client_id,
            "prompt_id": prompt_id or new_prompt_id(),
        }
        if front:
            payload["front"] = True
        if extra_data:
            payload["extra_data"] = dict(extra_data)
        status, body, _ = await self._request("POST", "/prompt", ok=(200, 400), json=payload)
        data = _object(body, "/prompt", "prompt_id" if status == 200 else "error")
        if status == 400:
            error = data.get("error") or {}
            raise PromptRejected(
                str(error.get("type", "")), str(error.get("message", "")), node_errors_from(data)
            )
        log.debug("queued prompt %s as number %s", data.get("prompt_id"), data.get("number"))
        return Submitted(prompt_id=str(data["prompt_id"]), number=data.get("number", 0))

    async def upload_image(
        self, data: bytes, filename: str, *, subfolder: str = "", unique: bool = True
    ) -> UploadedImage:
        """Store an image in ComfyUI's input folder; by default under a name no other job uses."""
        name = unique_upload_name(filename) if unique else filename
        form = aiohttp.FormData()
        form.add_field("image", data, filename=name, content_type="application/octet-stream")
        form.add_field("type", "input")
        if subfolder:
            form.add_field("subfolder", subfolder)
        _, body, _ = await self._request("POST", "/upload/image", data=form)
        answer = _object(body, "/upload/image", "name")
        return UploadedImage(
            name=str(answer["name"]),
            subfolder=str(answer.get("subfolder", "")),
            type=str(answer.get("type", "input")),
        )

    async def view(self, file: OutputFile) -> bytes:
        """Download an output (or input or temp) file's bytes.

        Raises:
            ProtocolError: the answer is a page or JSON, not the file (a proxy in the way).
        """
        params = {"filename": file.filename, "subfolder": file.subfolder, "type": file.type}
        _, body, content_type = await self._request("GET", "/view", params=params)
        expected = mimetypes.guess_type(file.filename)[0]
        if content_type in _NOT_FILES and content_type != expected:
            raise ProtocolError(f"/view answered {content_type} instead of {file.filename}")
        return body

    async def history(self, prompt_id: str) -> HistoryEntry | None:
        """Return the history entry of a prompt, or None when ComfyUI does not know it."""
        data = await self._json("GET", f"/history/{prompt_id}")
        entry = data.get(prompt_id) if isinstance(data, dict) else None
        return HistoryEntry.from_data(prompt_id, entry) if entry else None

    async def queue(self) -> QueueSnapshot:
        """Return the running and pending prompts of every client."""
        return QueueSnapshot.from_data(await self._json("GET", "/queue"))

    async def delete_pending(self, prompt_ids: Iterable[str]) -> None:
        """Remove pending prompts from the queue (a running prompt is not affected)."""
        await self._request("POST", "/queue", json={"delete": list(prompt_ids)})

    async def interrupt(self, prompt_id: str) -> None:
        """Interrupt the prompt if, and only if, it is the one running now."""
        await self._request("POST", "/interrupt", json={"prompt_id": prompt_id})

    async def object_info(self) -> dict[str, Any]:
        """Return the node classes the server knows, with their input specs."""
        data = await self._json("GET", "/object_info")
        if not isinstance(data, dict):
            raise ProtocolError("/object_info did not answer an object")
        return data

    async def system_stats(self) -> dict[str, Any]:
        """Return the server's version, devices and memory."""
        data = await self._json("GET", "/system_stats")
        if not isinstance(data, dict):
            raise ProtocolError("/system_stats did not answer an object")
        return data

    async def free(self, *, unload_models: bool = False, free_memory: bool = False) -> None:
        """Ask ComfyUI to unload models and/or free memory."""
        body = {"unload_models": unload_models, "free_memory": free_memory}
        await self._request("POST", "/free", json=body)


# What /view never sends for a file of another type; a proxy's error page or an API answer.
_NOT_FILES = frozenset({"text/html", "application/json", "text/plain"})


def _object(body: bytes, path: str, key: str) -> dict[str, Any]:
    """Decode a JSON object that must hold `key` (a proxy may answer 200 with something else).

    Raises:
        ProtocolError: not JSON, not an object, or without `key`.
    """
    data = _decode(body, path)
    if not isinstance(data, dict) or key not in data:
        raise ProtocolError(f"{path} answered JSON without {key!r}")
    return data


def _decode(body: bytes, path: str) -> Any:
    try:
        return json.loads(body)
    except ValueError as exc:
        raise ProtocolError(f"{path} answered something that is not JSON") from exc


__all__ = ["ComfyClient", "new_prompt_id", "unique_upload_name"]
