"""What every entry point shares: one-line errors for user mistakes, and config helpers."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from hydra.utils import instantiate
from lightning.fabric.utilities.exceptions import MisconfigurationException
from omegaconf import DictConfig, OmegaConf

from src.errors import UserError

T = TypeVar("T")

#: Exceptions whose message is the whole story for the user: no traceback.
USER_ERRORS = (UserError, MisconfigurationException)


def find_user_error(error: BaseException | None) -> BaseException | None:
    """The user error behind `error`, also when Hydra's instantiate wrapped it."""
    while error is not None:
        if isinstance(error, USER_ERRORS):
            return error
        error = error.__cause__ or error.__context__
    return None


def exit_on_user_error(task: Callable[..., T]) -> Callable[..., T]:
    """Turn a user error into one logged line and exit status 2 instead of a traceback."""

    @functools.wraps(task)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return task(*args, **kwargs)
        except Exception as error:
            user_error = find_user_error(error)
            if user_error is None:
                raise
            message = " ".join(str(user_error).split())
            print(f"Error: {message}", file=sys.stderr)
            sys.exit(2)

    return wrapper


def to_plain(config: DictConfig | None) -> Any:
    """A resolved config as plain Python containers (safe to store in checkpoints)."""
    if config is None:
        return None
    return OmegaConf.to_container(config, resolve=True)


def instantiate_group(group: DictConfig | None) -> list[Any]:
    """Instantiate every `_target_` entry of a config group such as `callbacks` or `logger`."""
    if not group:
        return []
    return [instantiate(entry) for entry in group.values() if entry and "_target_" in entry]


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config as `a/b/c: value` pairs of simple types, for hparams tables."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}/"))
        elif isinstance(value, (list, tuple)):
            flat[name] = str(list(value))
        elif value is None:
            flat[name] = "null"
        else:
            flat[name] = value
    return flat
