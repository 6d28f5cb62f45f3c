"""Errors a user can cause and fix: entry points print them as one line instead of a traceback."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from numbers import Real
from typing import Any, TypeVar

T = TypeVar("T")


class UserError(Exception):
    """Something in the config or the inputs is wrong; the message says what and what to do."""


def user_error_types() -> tuple[type[BaseException], ...]:
    """Exceptions whose message is the whole story for the user: no traceback. Lightning's
    configuration errors only once Lightning is loaded, so that paths without it stay without."""
    lightning = sys.modules.get("lightning.fabric.utilities.exceptions")
    return (UserError,) if lightning is None else (UserError, lightning.MisconfigurationException)


def find_user_error(error: BaseException | None) -> BaseException | None:
    """The user error behind `error`, also when Hydra's instantiate wrapped it."""
    while error is not None:
        if isinstance(error, user_error_types()):
            return error
        error = error.__cause__ or error.__context__
    return None


def one_line(text: object) -> str:
    """A message (or any text) on a single line."""
    return " ".join(str(text).split())


def exit_on_user_error(task: Callable[..., T]) -> Callable[..., T]:
    """Turn a user error into one printed line and exit status 2 instead of a traceback."""

    @functools.wraps(task)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return task(*args, **kwargs)
        except Exception as error:
            user_error = find_user_error(error)
            if user_error is None:
                raise
            print(f"Error: {one_line(user_error)}", file=sys.stderr)
            sys.exit(2)

    return wrapper


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
