"""Domain errors of ComfyCord and the one place they become text for users."""

from __future__ import annotations


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


class NotAllowed(BotError):
    """The member may not act on this job."""


class InvalidImage(BotError):
    """An input image was refused before anything was sent to ComfyUI."""
