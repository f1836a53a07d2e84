"""The fake ComfyUI's input/output/temp folders, kept in memory, with ComfyUI's naming rules."""

from __future__ import annotations

import posixpath
import re
import time
from dataclasses import dataclass

KINDS = ("input", "output", "temp")
_IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff")
_ANNOTATION = re.compile(r"^(.*) \[(input|output|temp)\]$")


@dataclass(frozen=True, slots=True)
class Upload:
    """What POST /upload/image answers: a status, and the JSON body when it is 200."""

    status: int
    body: dict[str, str] | None = None


class FileStore:
    """Files by folder kind ("input", "output", "temp") and relative path ("sub/name.png")."""

    def __init__(self) -> None:
        self.folders: dict[str, dict[str, bytes]] = {kind: {} for kind in KINDS}
        self.mtimes: dict[tuple[str, str], float] = {}
        self._subfolders: dict[str, set[str]] = {kind: {""} for kind in KINDS}

    def put(self, kind: str, path: str, data: bytes) -> None:
        """Store a file (its folder is created, as os.makedirs would)."""
        self.folders[kind][path] = data
        self.mtimes[(kind, path)] = time.time()
        self._subfolders[kind].add(posixpath.dirname(path))

    def get(self, kind: str, path: str) -> bytes | None:
        """Return a file's bytes, or None."""
        return self.folders[kind].get(path)

    def clear_temp(self) -> None:
        """Empty the temp folder, as ComfyUI does at start-up."""
        self.folders["temp"].clear()

    def resolve_annotated(self, name: str) -> tuple[str, str]:
        """Split `"x.png [output]"` into (kind, path); plain names are inputs."""
        match = _ANNOTATION.match(name)
        return (match.group(2), match.group(1)) if match else ("input", name)

    def read_annotated(self, name: str) -> bytes | None:
        """Return the file LoadImage would open for this value."""
        kind, path = self.resolve_annotated(name)
        return self.get(kind, posixpath.normpath(path))

    def exists_annotated(self, name: str) -> bool:
        """Tell whether LoadImage's VALIDATE_INPUTS would find the file."""
        return self.read_annotated(name) is not None

    def input_images(self) -> list[str]:
        """Return the top-level input image files (LoadImage's combo list)."""
        return sorted(
            path
            for path in self.folders["input"]
            if "/" not in path and path.lower().endswith(_IMAGE_EXTENSIONS)
        )

    def next_counter(self, kind: str, subfolder: str, prefix: str) -> int:
        """Return the next `<prefix>_<counter>_` number in a folder (max existing + 1)."""
        counters = [0]
        for path in self.folders[kind]:
            if posixpath.dirname(path) != subfolder:
                continue
            rest = posixpath.basename(path)[len(prefix) + 1 :]
            if posixpath.basename(path).startswith(prefix + "_") and rest[:5].isdigit():
                counters.append(int(rest.split("_")[0]))
        return max(counters) + 1

    def upload(
        self, filename: str, data: bytes, *, subfolder: str, kind: str | None, overwrite: bool
    ) -> Upload:
        """Store an upload with ComfyUI's collision rules (hash match, then " (n)" suffixes)."""
        kind = kind or "input"
        if kind not in KINDS:
            # ComfyUI crashes on os.path.join(None, ...) here.
            raise ValueError(f"unknown upload type {kind!r}")
        folder = posixpath.normpath(subfolder) if subfolder else ""
        folder = "" if folder == "." else folder
        path = posixpath.normpath(posixpath.join(folder, filename))
        if subfolder.startswith("/") or path == ".." or path.startswith(("../", "/")):
            return Upload(400)
        if posixpath.dirname(path) not in self._subfolders[kind] | {folder}:
            raise FileNotFoundError(path)
        stem, ext = posixpath.splitext(filename)
        number = 1
        while not overwrite and path in self.folders[kind]:
            if self.folders[kind][path] == data:
                return Upload(200, {"name": filename, "subfolder": subfolder, "type": kind})
            filename = f"{stem} ({number}){ext}"
            path = posixpath.join(folder, filename)
            number += 1
        self.put(kind, path, data)
        return Upload(200, {"name": filename, "subfolder": subfolder, "type": kind})

    def view(self, filename: str, subfolder: str | None, kind: str) -> tuple[int, bytes | None]:
        """Find a file for GET /view; return (status, bytes) with /view's error statuses."""
        match = _ANNOTATION.match(filename)
        if match:
            filename, kind = match.group(1), match.group(2)
        if not filename:
            return 400, None
        if filename.startswith("/") or ".." in filename:
            return 400, None
        if kind not in KINDS:
            return 400, None
        folder = ""
        if subfolder is not None:
            folder = posixpath.normpath(subfolder) if subfolder else ""
            if subfolder.startswith("/") or folder == ".." or folder.startswith("../"):
                return 403, None
            folder = "" if folder == "." else folder
        data = self.get(kind, posixpath.join(folder, posixpath.basename(filename)))
        return (200, data) if data is not None else (404, None)
