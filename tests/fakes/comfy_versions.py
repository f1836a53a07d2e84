"""What differs between the fake's ComfyUI versions: 0.3.64 (recorded) and 0.38 (from source)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

_UPLOAD = 104857600


@dataclass(frozen=True, slots=True)
class VersionRules:
    """One ComfyUI version's answers where they differ from the other's."""

    name: str
    comfyui_version: str
    requires_uuid_ids: bool
    has_jobs_api: bool
    honours_preview_method: bool
    features: dict[str, Any] = field(default_factory=dict)


VERSIONS = {
    "0.3.64": VersionRules(
        name="0.3.64",
        comfyui_version="0.3.64",
        requires_uuid_ids=False,
        has_jobs_api=False,
        honours_preview_method=False,
        features={"supports_preview_metadata": True, "max_upload_size": _UPLOAD},
    ),
    # Read in Comfy-Org/ComfyUI at 0.38.1 (server.py, comfy_execution/jobs.py, latent_preview.py,
    # comfy_api/feature_flags.py); see PROTOCOL.md section 7. Not recorded from a live server.
    "0.38": VersionRules(
        name="0.38",
        comfyui_version="0.38.1",
        requires_uuid_ids=True,
        has_jobs_api=True,
        honours_preview_method=True,
        features={
            "supports_preview_metadata": True,
            "supports_model_type_tags": True,
            "max_upload_size": _UPLOAD,
            "extension": {"manager": {"supports_v4": True}},
            "node_replacements": True,
            "assets": False,
        },
    ),
}

INVALID_PROMPT_ID = {
    "error": {
        "type": "invalid_prompt_id",
        "message": "prompt_id must be a valid UUID",
        "details": "prompt_id must be a UUID string in canonical lowercase hyphenated form; "
        "omit it to let the server generate one",
        "extra_info": {},
    },
    "node_errors": {},
}


# Recorded from 0.3.64 (trace h); the version is each fake's own.
SYSTEM_STATS: dict[str, Any] = {
    "system": {
        "os": "posix",
        "ram_total": 25276510208,
        "ram_free": 24211677184,
        "comfyui_version": "0.3.64",
        "required_frontend_version": "1.27.10",
        "installed_templates_version": "0.1.95",
        "required_templates_version": "0.1.95",
        "python_version": "3.11.7 (main, May  9 2026, 07:35:25) [GCC 12.2.0]",
        "pytorch_version": "2.14.1+cu130",
        "embedded_python": False,
        "argv": ["main.py", "--cpu", "--listen", "127.0.0.1", "--port", "8188"],
    },
    "devices": [
        {
            "name": "cpu",
            "type": "cpu",
            "index": None,
            "vram_total": 25276510208,
            "vram_free": 24211677184,
            "torch_vram_total": 25276510208,
            "torch_vram_free": 24211677184,
        }
    ],
}


def rules_for(version: str) -> VersionRules:
    """Return the rules of a version name ("0.3.64" or "0.38").

    Raises:
        ValueError: the fake does not know that version.
    """
    try:
        return VERSIONS[version]
    except KeyError:
        raise ValueError(f"FakeComfy knows versions {sorted(VERSIONS)}, not {version!r}") from None
