"""Input images against each ComfyUI server's upload limit (`max_upload_size` in its /features).

An image over a server's limit is never sent there to be refused with a 413: a job goes to a
server that takes its images, and is refused before anything is sent when none of the servers
that may run it does. A server that does not tell its limit takes any size, as before.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.comfy.backend import ComfyBackend
from bot.comfy.client import upload_size
from bot.errors import OverUploadLimit
from bot.images import ImageFile


def refusal(images: Sequence[ImageFile], backend: ComfyBackend) -> OverUploadLimit | None:
    """Return why `backend` cannot take these images, or None when it takes them all."""
    limit = backend.upload_limit
    if limit is None:
        return None
    for number, image in enumerate(images, start=1):
        size = upload_size(image.data, image.filename)
        if size > limit:
            which = f"Input image {number}" if len(images) > 1 else "The input image"
            return OverUploadLimit(
                f"{which} is {_size(size)} as ComfyCord uploads it (a PNG), over the"
                f" {_size(limit)} upload limit of the ComfyUI server at {backend.url};"
                " nothing was sent. Send a smaller image."
            )
    return None


def fits(images: Sequence[ImageFile], backend: ComfyBackend) -> bool:
    """Tell whether `backend` takes these images (a server of unknown limit takes any)."""
    return not images or refusal(images, backend) is None


def check(images: Sequence[ImageFile], backends: Sequence[ComfyBackend]) -> None:
    """Refuse images none of `backends` takes; name the most generous server's limit.

    Raises:
        OverUploadLimit: every server that may run the job has a known limit below the images.
    """
    if not images:
        return
    refusals = []
    for backend in sorted(backends, key=lambda b: b.upload_limit or 0, reverse=True):
        found = refusal(images, backend)
        if found is None:
            return
        refusals.append(found)
    if refusals:
        raise refusals[0]


def _size(size: int) -> str:
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KiB"
    return f"{size / (1024 * 1024):.1f} MiB"
