"""Errors a user can cause and fix: entry points print them as one line instead of a traceback."""

from __future__ import annotations

from numbers import Real
from typing import Any


class UserError(Exception):
    """Something in the config or the inputs is wrong; the message says what and what to do."""


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def require_int(value: Any, name: str, minimum: int) -> None:
    """Refuse anything but an integer >= `minimum`, naming the setting."""
    if not is_int(value) or value < minimum:
        raise UserError(f"{name}={value!r} must be an integer >= {minimum}")


def require_number(value: Any, name: str, low: float, high: float | None = None) -> None:
    """`low <= value` (and `value <= high` when given)."""
    is_number = isinstance(value, Real) and not isinstance(value, bool)
    if not is_number or value < low or (high is not None and value > high):
        allowed = f">= {low}" if high is None else f"between {low} and {high}"
        raise UserError(f"{name}={value!r} must be a number {allowed}")
