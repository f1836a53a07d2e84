"""Domain errors of ComfyCord and the one place they become text for users."""

from __future__ import annotations

from bot.comfy.errors import ComfyHTTPError, ComfyUnavailable, PromptRejected, ProtocolError


class BotError(Exception):
    """Base of every domain failure; `user_message` is safe to show to a user."""

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message


class TooManyJobs(BotError):
    """The requester already has as many jobs as allowed."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"You already have {limit} job{'s' if limit != 1 else ''} queued or running;"
            " wait for one to finish or cancel it."
        )
        self.limit = limit


class QueueFull(BotError):
    """Our own queue is at capacity."""

    def __init__(self, size: int) -> None:
        super().__init__(f"The queue is full ({size} jobs waiting); try again in a few minutes.")


class UnknownJob(BotError):
    """No job has that id (it may have ended long ago)."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"There is no job {job_id}; it may have finished already.")
        self.job_id = job_id


class InputsExpired(BotError):
    """A past job's input images were pruned from the journal, so it cannot run again."""


class JournalUnavailable(BotError):
    """The job journal cannot be written, so a job is not sent (a kill would lose its record)."""


class NotAllowed(BotError):
    """The member may not act on this job."""


class InvalidImage(BotError):
    """An input image was refused before anything was sent to ComfyUI."""


class ImageTooLarge(InvalidImage):
    """An input image is over the size limit (front doors may answer differently, e.g. 413)."""


class OverUploadLimit(ImageTooLarge):
    """An input image is over the upload limit of every ComfyUI server that could run the job."""


EXIT_OK = 0
"""Exit code of every command that did what it was asked."""
EXIT_USAGE = 2
"""Exit code of every command given bad arguments, settings or input."""

EXIT_UNREACHABLE = 3
"""Exit code of every command that could not reach a server it needs (ComfyUI or Discord)."""

UNEXPECTED = "Something went wrong on our side; the error was logged."
"""What `user_message` says about a failure it does not know; callers log those."""


def user_message(exc: BaseException) -> str:
    """Turn any failure into text a user can act on; the one place this happens."""
    match exc:
        case BotError(user_message=text):
            return text
        case PromptRejected(node_errors=errors):
            lines = [f"ComfyUI refused the workflow: {exc.message}"]
            lines += [
                f"- node {e.node_id} ({e.class_type or '?'}), input {e.input_name}: {e.message}"
                f"{f' ({e.details})' if e.details and e.details != e.input_name else ''}"
                if e.input_name
                else f"- {e.message}{f' ({e.details})' if e.details else ''}"
                for e in errors
            ]
            return "\n".join(lines)
        case ComfyUnavailable():
            return "ComfyUI is not reachable right now; please try again in a minute."
        case ComfyHTTPError(status=status):
            return f"ComfyUI answered with an error (HTTP {status}); please try again."
        case ProtocolError():
            # The details (a path, the start of a body) are for the log, not for every member.
            return (
                "ComfyUI gave an answer ComfyCord does not understand;"
                " an admin can see it in the log."
            )
        case _:
            return _discord_message(exc) or UNEXPECTED


def _discord_message(exc: BaseException) -> str | None:
    """Describe discord.py's app-command check failures; None for anything else."""
    from discord import app_commands

    def names(permissions: list[str]) -> str:
        return ", ".join(
            p.replace("_", " ").replace("guild", "server").title() for p in permissions
        )

    match exc:
        case app_commands.MissingPermissions(missing_permissions=missing):
            return f"You need the {names(missing)} permission to do that."
        case app_commands.BotMissingPermissions(missing_permissions=missing):
            return f"I need the {names(missing)} permission in this channel to do that."
        case app_commands.CommandOnCooldown(retry_after=retry_after):
            return f"Slow down: try again in {retry_after:.0f} s."
        case app_commands.NoPrivateMessage():
            return "This only works in a server, not in direct messages."
        case app_commands.MissingRole() | app_commands.MissingAnyRole():
            return "You don't have the role needed to do that."
        case app_commands.CheckFailure():
            return "You can't use that here."
        case app_commands.TransformerError(value=value):
            return f"{value!r} is not a valid value for that option."
        case _:
            return None
