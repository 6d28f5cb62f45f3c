"""Build a torchvision classification network with a new head and load its starting weights."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
import torchvision
from torch import nn

from src.finetuning.head import in_head, replace_head
from src.utils.errors import UserError

log = logging.getLogger(__name__)


class WeightsError(UserError):
    """Starting weights were asked for but cannot be obtained or do not fit the network."""


def classification_model_names() -> list[str]:
    """Names torchvision can build as image classifiers (detection, video, ... excluded)."""
    return sorted(torchvision.models.list_models(module=torchvision.models))


def build_network(name: str, num_classes: int) -> tuple[nn.Module, str]:
    """The architecture `name` with random weights and a new head of `num_classes` outputs.

    Returns the network and the dotted name of its head. No weights are downloaded here, so that
    restoring from a checkpoint never touches the network: starting weights come from
    `load_starting_weights`.
    """
    known = classification_model_names()
    if name not in known:
        raise UserError(
            f"model.name={name!r} is not a torchvision classification model; "
            f"choose one of: {', '.join(known)}"
        )
    net = torchvision.models.get_model(name, weights=None)
    return net, replace_head(net, num_classes)


def imagenet_state_dict(name: str) -> dict[str, torch.Tensor]:
    """torchvision's ImageNet weights for `name`, from the torch cache or downloaded to it."""
    try:
        weights = torchvision.models.get_model_weights(name).DEFAULT
        return weights.get_state_dict(progress=True, check_hash=True)
    except Exception as error:
        raise WeightsError(
            f"Could not obtain ImageNet weights for {name} ({type(error).__name__}: {error}); "
            "pass model.weights_path=FILE (a local state dict or checkpoint) "
            "or model.pretrained=false (random init)"
        ) from error


def read_weights_file(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from a plain torch file or from a checkpoint of this project.

    Loaded with `weights_only=True`: a file that would run code when unpickled is refused.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(
            f"model.weights_path={path} does not exist; give the path of a weights file"
        )
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise WeightsError(
            f"model.weights_path={path} cannot be loaded as a torch weights file "
            f"({type(error).__name__}: {str(error).splitlines()[0]})"
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
    net: nn.Module, head_name: str, state_dict: dict[str, torch.Tensor], source: str
) -> None:
    """Copy `state_dict` into `net`; the head keeps its fresh weights when its shape differs.

    Every other tensor must match by name and shape, with none left over: a file for another
    architecture is an error, never a silent partial load.
    """
    own = net.state_dict()
    head_keys = {key for key in own if in_head(key, head_name)}
    to_load = {}
    for key, value in state_dict.items():
        if key in own and own[key].shape == value.shape:
            to_load[key] = value
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
