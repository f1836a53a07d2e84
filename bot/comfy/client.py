"""ComfyClient: ComfyUI's HTTP API over aiohttp, every call with a timeout and typed errors."""

from __future__ import annotations

import asyncio
import logging
import mimetypes
import uuid
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any, Self

import aiohttp
from yarl import URL

from bot.comfy.errors import ProtocolError
from bot.comfy.events import OutputFile
from bot.comfy.ids import new_prompt_id, unique_upload_name
from bot.comfy.info import ServerFeatures, ServerInfo, SystemStats
from bot.comfy.models import HistoryEntry, JobRecord, QueueSnapshot, Submitted, UploadedImage
from bot.comfy.rejections import rejection
from bot.comfy.shapes import decode, expect_object
from bot.comfy.transport import Transport
from bot.comfy.urls import shown_url

log = logging.getLogger(__name__)


class ComfyClient:
    """Talk to one ComfyUI server over HTTP.

    The aiohttp session may be injected; the client closes only a session it created.
    `preview_method` goes with every prompt as `extra_data.preview_method` (ComfyUI 0.38
    otherwise applies its start-up flag, often no previews; 0.3.64 ignores the key).
    """

    def __init__(
        self,
        base_url: str,
        *,
        session: aiohttp.ClientSession | None = None,
        client_id: str | None = None,
        timeout: float = 30.0,
        preview_method: str | None = None,
    ) -> None:
        self.base_url = URL(base_url.rstrip("/"))
        self.client_id = client_id or uuid.uuid4().hex
        self.preview_method = preview_method
        self._transport = Transport(
            self.base_url, shown_url=self.shown_url, session=session, timeout=timeout
        )

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
        await self._transport.close()

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
            ProtocolError: the answer was not ComfyUI's (the prompt may not be queued).
        """
        prompt_id = prompt_id or new_prompt_id()
        payload: dict[str, Any] = {
            "prompt": prompt,
            "client_id": self.client_id,
            "prompt_id": prompt_id,
        }
        if front:
            payload["front"] = True
        extra = dict(extra_data or {})
        if self.preview_method is not None:
            extra.setdefault("preview_method", self.preview_method)
        if extra:
            payload["extra_data"] = extra
        status, body = await self._transport.request("POST", "/prompt", ok=(200, 400), json=payload)
        data = decode(body, "/prompt")
        if status == 400:
            raise rejection(data)
        submitted = Submitted.from_data(data)
        if submitted.prompt_id != prompt_id:
            raise ProtocolError(
                f"ComfyUI queued the prompt as {submitted.prompt_id!r}, not as {prompt_id!r}"
            )
        log.debug("queued prompt %s as number %s", prompt_id, submitted.number)
        return submitted

    async def upload_image(
        self, data: bytes, filename: str, *, subfolder: str = "", unique: bool = True
    ) -> UploadedImage:
        """Store an image in ComfyUI's input folder; by default under a name no other job uses.

        Raises:
            ProtocolError: the answer does not name the stored file.
        """
        name = unique_upload_name(filename) if unique else filename
        form = _upload_form(data, name, subfolder)
        return UploadedImage.from_data(
            await self._transport.json("POST", "/upload/image", data=form)
        )

    async def view(self, file: OutputFile) -> bytes:
        """Download an output (or input or temp) file's bytes.

        Raises:
            ProtocolError: the answer is a page or JSON, not the file (a proxy in the way).
        """
        params = {"filename": file.filename, "subfolder": file.subfolder, "type": file.type}
        _, body = await self._transport.request("GET", "/view", params=params)
        expected = mimetypes.guess_type(file.filename)[0] or ""
        if expected.startswith(_MEDIA) and body.lstrip()[:1] in _PAGE_STARTS:
            raise ProtocolError(f"/view answered a page or JSON instead of {file.filename}")
        return body

    async def history(self, prompt_id: str) -> HistoryEntry | None:
        """Return the history entry of a prompt, or None when ComfyUI does not know it."""
        data = expect_object(await self._transport.json("GET", f"/history/{prompt_id}"), "/history")
        entry = data.get(prompt_id)
        return HistoryEntry.from_data(prompt_id, entry) if entry else None

    async def queue(self) -> QueueSnapshot:
        """Return the running and pending prompts of every client."""
        return QueueSnapshot.from_data(
            expect_object(await self._transport.json("GET", "/queue"), "/queue")
        )

    async def delete_pending(self, prompt_ids: Iterable[str]) -> None:
        """Remove pending prompts from the queue (a running prompt is not affected)."""
        await self._transport.request("POST", "/queue", json={"delete": list(prompt_ids)})

    async def interrupt(self, prompt_id: str) -> None:
        """Interrupt the prompt if, and only if, it is the one running now."""
        await self._transport.request("POST", "/interrupt", json={"prompt_id": prompt_id})

    async def job(self, prompt_id: str) -> JobRecord | None:
        """Return a prompt's record from the jobs API (0.38 on), or None when it is unknown."""
        status, body = await self._transport.request("GET", f"/api/jobs/{prompt_id}", ok=(200, 404))
        if status == 404:
            return None
        return JobRecord.from_data(prompt_id, decode(body, "/api/jobs/{id}"))

    async def cancel_job(self, prompt_id: str) -> bool:
        """Cancel a prompt through the jobs API; tell whether a pending or running one was hit.

        ComfyUI interrupts it only while it is the one running, and dequeues it while pending.
        """
        answer = expect_object(
            await self._transport.json("POST", f"/api/jobs/{prompt_id}/cancel"),
            "/api/jobs/{id}/cancel",
        )
        return answer.get("cancelled") is True

    async def has_jobs_api(self) -> bool:
        """Tell whether the server answers the jobs API (0.38 does; 0.3.64 answers 404)."""
        status, body = await self._transport.request(
            "GET", "/api/jobs", ok=(200, 404), params={"limit": 1}
        )
        if status == 404:
            return False
        try:
            answer = decode(body, "/api/jobs")
        except ProtocolError:
            return False  # a front end answering HTML for unknown paths: no jobs API there
        return isinstance(answer, dict) and isinstance(answer.get("jobs"), list)

    async def features(self) -> ServerFeatures:
        """Return the server's /features (none for a server without the route)."""
        status, body = await self._transport.request("GET", "/features", ok=(200, 404))
        if status == 404:
            return ServerFeatures()
        return ServerFeatures.from_data(decode(body, "/features"))

    async def server_info(self) -> ServerInfo:
        """Learn the server's version, features and API path (three requests at once)."""
        stats, features, has_jobs_api = await asyncio.gather(
            self.system_stats(), self.features(), self.has_jobs_api()
        )
        return ServerInfo(stats, features, has_jobs_api)

    async def object_info(self) -> dict[str, Any]:
        """Return the node classes the server knows, with their input specs."""
        return expect_object(await self._transport.json("GET", "/object_info"), "/object_info")

    async def system_stats(self) -> SystemStats:
        """Return the server's version, devices and memory."""
        return SystemStats.from_data(await self._transport.json("GET", "/system_stats"))

    async def free(self, *, unload_models: bool = False, free_memory: bool = False) -> None:
        """Ask ComfyUI to unload models and/or free memory."""
        body = {"unload_models": unload_models, "free_memory": free_memory}
        await self._transport.request("POST", "/free", json=body)


# An image, video or sound never starts like an HTML page or a JSON answer (a proxy's error).
_MEDIA = ("image/", "video/", "audio/")
_PAGE_STARTS = (b"<", b"{", b"[")


def _upload_form(data: bytes, name: str, subfolder: str = "") -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("image", data, filename=name, content_type="application/octet-stream")
    form.add_field("type", "input")
    if subfolder:
        form.add_field("subfolder", subfolder)
    return form


def upload_size(data: bytes, filename: str) -> int:
    """Return the bytes of the body `upload_image` sends for an image (what ComfyUI's
    `max_upload_size` bounds: the whole request, with its multipart framing)."""
    size = _upload_form(data, unique_upload_name(filename))().size
    return len(data) + 1024 if size is None else size  # (aiohttp knows the size of bytes)


__all__ = ["ComfyClient", "new_prompt_id", "unique_upload_name", "upload_size"]
