"""Config groups to objects and plain values: instantiate every entry of a group, resolve a node
into plain containers (safe in checkpoints)."""

from __future__ import annotations

from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from src.utils.errors import find_user_error


def build_from_config(node: Any, **kwargs: Any) -> Any:
    """Hydra's `instantiate`, with a user error raised by a constructor raised as itself rather
    than wrapped in Hydra's InstantiationException."""
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as error:
        user_error = find_user_error(error)
        if user_error is None:
            raise
        raise user_error from None


def to_plain(config: DictConfig | None) -> Any:
    """A resolved config as plain Python containers (safe to store in checkpoints)."""
    if config is None:
        return None
    return OmegaConf.to_container(config, resolve=True)


def instantiate_group(group: DictConfig | None) -> list[Any]:
    """Instantiate every `_target_` entry of a config group such as `callbacks` or `logger`."""
    if not group:
        return []
    return [build_from_config(entry) for entry in group.values() if entry and "_target_" in entry]
