"""A source of networks (torchvision, timm) behind one interface, found by the `model.source`
setting: the module `src/networks/sources/<source>.py` and its `SOURCE`. Adding a source is that
module and a config file in `conf/model/`."""

from __future__ import annotations

import functools
import importlib
import pkgutil
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from src.networks import sources
from src.networks.description import InputSpec, NetworkDescription
from src.networks.weights import read_weights_file
from src.utils.errors import UserError

#: The source of checkpoints and configs that name none (torchvision's were the only ones).
DEFAULT_SOURCE = "torchvision"


class NetworkSource(ABC):
    """Builds networks by name, with a new head for N classes, and describes them.

    `options` is the `model` config (`name`, `kwargs` for the builder, ...); `image_size` is the
    side of the images the network will take, for networks built for one size.
    """

    #: The `model.source` value that selects this source.
    name: str

    @abstractmethod
    def names(self) -> list[str]:
        """Architecture names this source can build (for messages)."""

    @abstractmethod
    def check_name(self, name: str) -> None:
        """Refuse a name this source cannot build, with one line naming the choices."""

    @abstractmethod
    def input_spec(self, name: str) -> InputSpec:
        """Size, normalisation and evaluation crop that the pretrained weights of `name` expect."""

    @abstractmethod
    def build(self, options: Mapping[str, Any], num_classes: int, image_size: int) -> nn.Module:
        """The network with random weights and a head of `num_classes` outputs (no download)."""

    @abstractmethod
    def describe(self, net: nn.Module, options: Mapping[str, Any]) -> NetworkDescription:
        """Head, blocks, Grad-CAM layer and Dropout before the head of a network `build` made."""

    @abstractmethod
    def pretrained_weights(
        self, options: Mapping[str, Any], image_size: int
    ) -> dict[str, torch.Tensor]:
        """The pretrained weights of `options['name']`, downloaded or from the cache; a
        `WeightsError` naming `model.weights_path` when they cannot be obtained."""

    def weights_file(
        self, path: Path, options: Mapping[str, Any], image_size: int
    ) -> dict[str, torch.Tensor]:
        """The state dict in a local file (`model.weights_path`), in this source's format."""
        return read_weights_file(path)


def source_names() -> list[str]:
    return sorted(module.name for module in pkgutil.iter_modules(sources.__path__))


@functools.cache
def network_source(name: str | None) -> NetworkSource:
    """The source `name` (None: torchvision, for checkpoints made before there were others)."""
    name = name or DEFAULT_SOURCE
    if name not in source_names():
        raise UserError(
            f"model.source={name!r} is not a source of networks; choose one of: "
            f"{', '.join(source_names())} (or model=timm)"
        )
    return importlib.import_module(f"{sources.__name__}.{name}").SOURCE


def build_network(
    options: Mapping[str, Any], num_classes: int, image_size: int
) -> tuple[nn.Module, NetworkDescription]:
    """The network of the `model` config `options` for `num_classes`, and its description."""
    source = network_source(options.get("source"))
    source.check_name(options["name"])
    net = source.build(options, num_classes, image_size)
    return net, source.describe(net, options)


def architecture(options: Mapping[str, Any], image_size: int) -> nn.Module:
    """The network without memory for its weights (on the meta device) where it can be built
    so (torchvision's RegNets compute their widths from real tensors: built on the CPU)."""
    source = network_source(options.get("source"))
    source.check_name(options["name"])
    try:
        with torch.device("meta"):
            return source.build(options, 2, image_size)
    except NotImplementedError:
        return source.build(options, 2, image_size)
