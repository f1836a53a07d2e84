"""A clock a test sets by hand, for the code that takes `clock: Callable[[], float]`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Clock:
    """Return `now` when called; a test moves time on by changing `now`."""

    now: float

    def __call__(self) -> float:
        return self.now
