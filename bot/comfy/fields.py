"""Strict reads of a WebSocket message's fields: a wrong type raises, the parser says Unknown."""

from __future__ import annotations

from typing import Any, Final

# What hostile or truncated JSON can raise on the way to a dataclass: a missing key, a
# wrong type, inf or NaN where an int is due, or nesting deep enough to hit the recursion limit.
BAD_INPUT: Final = (
    LookupError,
    TypeError,
    ValueError,
    AttributeError,
    ArithmeticError,
    RecursionError,
)


def string(value: Any) -> str:
    """Return a str, or raise TypeError."""
    if not isinstance(value, str):
        raise TypeError(f"expected str, got {type(value).__name__}")
    return value


def optional_string(value: Any) -> str | None:
    """Return a str or None, or raise TypeError."""
    return None if value is None else string(value)


def number(value: Any) -> float:
    """Return a number (not a bool) as a float, or raise TypeError."""
    if type(value) is float:  # the common case, first: progress values are floats
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number, got {type(value).__name__}")
    return float(value)


def whole(value: Any) -> int:
    """Return a whole number (a float is truncated), or raise TypeError."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return int(number(value))


def optional_whole(value: Any) -> int | None:
    """Return a whole number or None, or raise TypeError."""
    return None if value is None else whole(value)


def strings(value: Any) -> tuple[str, ...]:
    """Return a list of str as a tuple, or raise TypeError."""
    if not isinstance(value, list | tuple):
        raise TypeError(f"expected a list, got {type(value).__name__}")
    return tuple(string(item) for item in value)
