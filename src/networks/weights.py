"""Starting weights: read a weights file, and load a state dict into a network whose head may
differ, never as a silent partial load."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from src.networks.blocks import within
from src.utils.errors import UserError, one_line

log = logging.getLogger(__name__)


class WeightsError(UserError):
    """Starting weights were asked for but cannot be obtained or do not fit the network."""


def read_weights_file(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from a `.safetensors` file, a plain torch file or a checkpoint of this
    project. Torch files are loaded with `weights_only=True`: a file that would run code when
    unpickled is refused."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(
            f"model.weights_path={path} does not exist; give the path of a weights file"
        )
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            content = load_file(path)
        else:
            content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise WeightsError(
            f"model.weights_path={path} cannot be loaded as a weights file "
            f"({type(error).__name__}: {one_line(error)[:200]})"
        ) from error
    if isinstance(content, dict) and isinstance(content.get("state_dict"), dict):
        # A Lightning checkpoint of this project: the network's weights sit under "net.".
        content = {
            key.removeprefix("net."): value
            for key, value in content["state_dict"].items()
            if key.startswith("net.")
        }
    if not isinstance(content, dict) or not all(
        isinstance(value, torch.Tensor) for value in content.values()
    ):
        raise WeightsError(f"model.weights_path={path} holds no state dict of tensors")
    return content


def load_starting_weights(
    net: nn.Module, head: str, state_dict: dict[str, torch.Tensor], source: str
) -> None:
    """Copy `state_dict` into `net`; the head keeps its fresh weights when its shape differs.

    Every other tensor must match by name and shape, with none left over: a file for another
    architecture is an error, never a silent partial load.
    """
    own = net.state_dict()
    head_keys = {key for key in own if within(key, head)}
    to_load = {
        key: value
        for key, value in state_dict.items()
        if key in own and own[key].shape == value.shape
    }
    head_loaded = head_keys.issubset(to_load)
    # Older torchvision files predate BatchNorm's num_batches_tracked counter.
    missing = sorted(
        key
        for key in set(own) - set(to_load) - head_keys
        if not key.endswith("num_batches_tracked")
    )
    unexpected = sorted(set(state_dict) - set(own))
    mismatched = sorted(
        key
        for key, value in state_dict.items()
        if key in own and key not in head_keys and own[key].shape != value.shape
    )
    if missing or mismatched or unexpected:
        examples = (missing[:2] + mismatched[:2] + unexpected[:2])[:4]
        raise WeightsError(
            f"weights from {source} do not fit this network ({len(missing)} missing, "
            f"{len(mismatched)} mis-shaped and {len(unexpected)} unknown tensors, e.g. "
            f"{', '.join(examples)}); check model.name against the file"
        )
    if not head_loaded:
        to_load = {key: value for key, value in to_load.items() if key not in head_keys}
    net.load_state_dict(to_load, strict=False)
    log.info(
        "Loaded weights from %s (%s)",
        source,
        "head included" if head_loaded else "new head randomly initialised",
    )
