"""What a ComfyUI server is and can do: /system_stats, /features and whether it has the jobs API."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Self

from bot.comfy.errors import ProtocolError
from bot.comfy.shapes import brief, expect_object, optional_number, optional_str

_GIB = 1024**3


@dataclass(frozen=True, slots=True)
class Device:
    """One torch device of the server, with its memory in bytes when known."""

    name: str
    type: str
    vram_total: float | None = None
    vram_free: float | None = None

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Self:
        """Build from one entry of /system_stats `devices`."""
        kind = optional_str(data, "type") or "device"
        return cls(
            name=optional_str(data, "name") or kind,
            type=kind,
            vram_total=optional_number(data, "vram_total"),
            vram_free=optional_number(data, "vram_free"),
        )

    @property
    def label(self) -> str:
        """Return the device's name without the allocator ComfyUI appends ("cuda:0 X : ...")."""
        return self.name.split(" : ")[0]

    @property
    def memory(self) -> str | None:
        """Return "free of total GiB free", or None when the server did not say."""
        if self.vram_free is None or not self.vram_total:
            return None
        return f"{self.vram_free / _GIB:.1f} of {self.vram_total / _GIB:.1f} GiB free"


@dataclass(frozen=True, slots=True)
class SystemStats:
    """A /system_stats answer: the ComfyUI version, its PyTorch, RAM and devices."""

    version: str | None
    pytorch_version: str | None = None
    ram_total: float | None = None
    ram_free: float | None = None
    devices: tuple[Device, ...] = ()

    @classmethod
    def from_data(cls, data: Any) -> Self:
        """Build from the decoded JSON; values of the wrong type are left out.

        Raises:
            ProtocolError: the answer, its "system" or its "devices" has the wrong shape.
        """
        stats = expect_object(data, "/system_stats")
        system = stats.get("system", {})
        if not isinstance(system, dict):
            raise ProtocolError(f"/system_stats: 'system' is not an object but {brief(system)}")
        devices = stats.get("devices", [])
        if not isinstance(devices, list):
            raise ProtocolError(f"/system_stats: 'devices' is not a list but {brief(devices)}")
        return cls(
            version=optional_str(system, "comfyui_version"),
            pytorch_version=optional_str(system, "pytorch_version"),
            ram_total=optional_number(system, "ram_total"),
            ram_free=optional_number(system, "ram_free"),
            devices=tuple(Device.from_data(d) for d in devices if isinstance(d, dict)),
        )

    def describe(self) -> str:
        """Return the version, PyTorch, devices and memory in one line."""
        parts = [f"ComfyUI {self.version or '(unknown version)'}"]
        if self.pytorch_version:
            parts.append(f"PyTorch {self.pytorch_version}")
        parts += [
            f"{device.label}: VRAM {device.memory}" if device.memory else device.label
            for device in self.devices
        ]
        if self.ram_total:
            parts.append(
                f"RAM {(self.ram_free or 0) / _GIB:.1f} of {self.ram_total / _GIB:.1f} GiB free"
            )
        return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class ServerFeatures:
    """The server's /features (an older server without the route has none)."""

    supports_preview_metadata: bool = False
    max_upload_size: float | None = None

    @property
    def upload_limit(self) -> int | None:
        """Return the largest request body the server reads, None for no (sensible) limit."""
        limit = self.max_upload_size
        # aiohttp, which ComfyUI serves with, reads 0 as no limit.
        if limit is None or not math.isfinite(limit) or limit <= 0:
            return None
        return int(limit)

    @classmethod
    def from_data(cls, data: Any) -> Self:
        """Build from the decoded JSON.

        Raises:
            ProtocolError: the answer is not an object.
        """
        features = expect_object(data, "/features")
        return cls(
            supports_preview_metadata=features.get("supports_preview_metadata") is True,
            max_upload_size=optional_number(features, "max_upload_size"),
        )


JOBS_API = "/api/jobs"
LEGACY_PATH = "/queue + /history"


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """What was learned of a server at connect: its stats, features and API path."""

    stats: SystemStats
    features: ServerFeatures
    has_jobs_api: bool

    @property
    def version(self) -> str | None:
        """Return the ComfyUI version the server reports."""
        return self.stats.version

    @property
    def path(self) -> str:
        """Return how we cancel and reconcile there: the jobs API, or /queue and /history."""
        return JOBS_API if self.has_jobs_api else LEGACY_PATH

    @property
    def requires_canonical_ids(self) -> bool:
        """Tell whether the server refuses prompt ids that are not canonical UUIDs (0.38 on)."""
        return self.has_jobs_api


@dataclass(frozen=True, slots=True)
class BackendHealth:
    """What the last check of a server found: its version, devices and API path."""

    is_up: bool = False
    version: str | None = None
    devices: tuple[Device, ...] = ()
    path: str | None = None
    error: str | None = None
    checked_at: float = 0.0

    @classmethod
    def of(cls, info: ServerInfo, *, checked_at: float) -> Self:
        """Return the health of a server that answered with `info`."""
        return cls(True, info.version, info.stats.devices, info.path, checked_at=checked_at)
