"""Small model-free API-format prompts for the core tests and the benchmark (nodes of FakeComfy)."""

from __future__ import annotations

from typing import Any

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def slow_prompt(
    seed: int = 0, *, steps: int = 3, preview: str = "none", prefix: str = "core"
) -> dict[str, Any]:
    """Return EmptyImage -> SlowProgress(steps) -> SaveImage; `seed` keeps the cache out."""
    return {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 16, "height": 16, "batch_size": 1, "color": seed % 0xFFFFFF},
        },
        "2": {
            "class_type": "SlowProgress",
            "inputs": {
                "image": ["1", 0],
                "steps": steps,
                "delay": 0.0,
                "preview": preview,
                "seed": seed,
            },
        },
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": prefix}},
    }


def failing_prompt(message: str = "the test asked this node to fail") -> dict[str, Any]:
    """Return EmptyImage -> FailNode -> SaveImage: it fails at node 2 when run."""
    return {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 16, "height": 16, "batch_size": 1, "color": 0},
        },
        "2": {"class_type": "FailNode", "inputs": {"image": ["1", 0], "message": message}},
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "f"}},
    }
