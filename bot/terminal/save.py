"""Saving `comfycord run`'s outputs: never over an existing file, never a partial one left."""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from bot.errors import BotError
from bot.images import ImageFile

_NO_LINKS = frozenset({errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK})


class OutputsNotSaved(BotError):
    """An output could not be written (full disk, no permission); `saved` lists what was."""

    def __init__(self, message: str, saved: Sequence[Path]) -> None:
        super().__init__(message)
        self.saved = tuple(saved)


class UnusableOutputFolder(BotError):
    """The output folder can never be written: it is a file, or lies under one, or is locked."""


def check_folder(directory: Path) -> None:
    """Refuse an output folder that could never be written, before anything is run for it.

    Nothing is created; a full disk and the like are still found when saving. Blocking.

    Raises:
        UnusableOutputFolder: it is a file, lies under a file, or its nearest existing folder
            may not be written.
    """
    existing = directory
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        where = "is a file" if existing == directory else f"is under {existing}, a file"
        raise UnusableOutputFolder(f"The output folder {directory} {where}; choose another.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UnusableOutputFolder(
            f"The output folder {directory} cannot be written (no permission on {existing})."
        )


def save_outputs(files: Sequence[ImageFile], directory: Path) -> list[Path]:
    """Write each file into `directory`, never over an existing one (name-1.png, name-2.png...).

    Each file is written to a temporary file and renamed into place, so a failure never
    leaves part of an image under an output's name. Blocking: call it through a thread.

    Raises:
        OutputsNotSaved: the directory or a file could not be written (partial files removed).
    """
    saved: list[Path] = []
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputsNotSaved(f"Cannot create {directory}: {exc.strerror or exc}.", saved) from exc
    for file in files:
        try:
            saved.append(_save_one(file, directory))
        except OSError as exc:
            done = f"; {len(saved)} of {len(files)} saved" if saved else ""
            raise OutputsNotSaved(
                f"Cannot save {file.filename} in {directory}: {exc.strerror or exc}{done}.",
                saved,
            ) from exc
    return saved


def _save_one(file: ImageFile, directory: Path) -> Path:
    name = Path(file.filename).name or "output.png"
    stem, suffix = Path(name).stem, Path(name).suffix
    handle, temporary = tempfile.mkstemp(prefix=f".{stem}.", suffix=".partial", dir=directory)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(file.data)
            out.flush()
            os.fsync(out.fileno())
        for number in itertools.count():
            path = directory / (name if number == 0 else f"{stem}-{number}{suffix}")
            try:
                # A hard link is the rename that refuses to replace an existing file.
                os.link(temporary, path)
            except FileExistsError:
                continue
            except OSError as exc:
                if exc.errno not in _NO_LINKS:
                    raise
                # No hard links here (FAT, some shares): reserve the name, then replace it.
                try:
                    path.open("xb").close()
                except FileExistsError:
                    continue
                os.replace(temporary, path)
            return path
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
    raise AssertionError("unreachable")  # itertools.count() never ends
