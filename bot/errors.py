"""Domain errors of ComfyCord and the one place they become text for users."""

from __future__ import annotations


class BotError(Exception):
    """Base of every domain failure; `user_message` is safe to show to a user."""

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message
