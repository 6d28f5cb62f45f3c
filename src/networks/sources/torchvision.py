"""torchvision's classification models: `model.source=torchvision` (the default), any name of
`torchvision.models.list_models(module=torchvision.models)`.

torchvision keeps no block boundaries, so the families whose top-level children do not read as
stages get an entry in `FAMILIES` (in the spirit of fastai's model splits); any other network's
blocks are its top-level children. The head is the last Linear layer; the input size,
normalisation and evaluation crop come from the default weights' transforms.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from typing import Any

import torch
import torchvision
from torch import nn

from src.networks.blocks import children_of, join_stragglers, top_level_blocks, with_parameters
from src.networks.description import Block, GradCamLayer, InputSpec, NetworkDescription
from src.networks.source import NetworkSource
from src.networks.weights import WeightsError
from src.utils.errors import UserError

log = logging.getLogger(__name__)

#: The weights-free defaults: ImageNet's normalisation and the usual 224 / 256 crop.
IMAGENET = InputSpec(224, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), 0.875)


def _resnet(net: nn.Module) -> list[Block]:
    return [("conv1", "bn1"), ("layer1",), ("layer2",), ("layer3",), ("layer4",)]


def _features(net: nn.Module) -> list[Block]:
    return children_of(net, "features")


def _swin(net: nn.Module) -> list[Block]:
    *stages, last = children_of(net, "features")
    return [*stages, (*last, "norm")]


def _regnet(net: nn.Module) -> list[Block]:
    return [("stem",), *children_of(net, "trunk_output")]


def _vision_transformer(net: nn.Module) -> list[Block]:
    """The patch embedding, then each encoder layer; the final LayerNorm goes with the last.
    (The class token and position embedding train only when everything does.)"""
    *layers, last = children_of(net, "encoder.layers")
    return [("conv_proj",), *layers, (*last, "encoder.ln")]


def _mnasnet(net: nn.Module) -> list[Block]:
    return children_of(net, "layers")


def _maxvit(net: nn.Module) -> list[Block]:
    return [("stem",), *children_of(net, "blocks")]


def _densenet(net: nn.Module) -> list[Block]:
    """The stem, then each dense block with the transition (or final norm) after it."""
    blocks: list[Block] = []
    for (name,) in children_of(net, "features"):
        if blocks and ".denseblock" not in name:
            blocks[-1] = (*blocks[-1], name)
        else:
            blocks.append((name,))
    return blocks


#: torchvision class name -> its blocks.
FAMILIES: dict[str, Callable[[nn.Module], list[Block]]] = {
    "ResNet": _resnet,
    "EfficientNet": _features,
    "MobileNetV2": _features,
    "MobileNetV3": _features,
    "ConvNeXt": _features,
    "DenseNet": _densenet,
    "VGG": _features,
    "AlexNet": _features,
    "SqueezeNet": _features,
    "SwinTransformer": _swin,
    "RegNet": _regnet,
    "VisionTransformer": _vision_transformer,
    "MNASNet": _mnasnet,
    "MaxVit": _maxvit,
}


def find_head(net: nn.Module) -> str:
    """Dotted name of the last Linear layer: the head of every torchvision classifier."""
    linear_names = [name for name, module in net.named_modules() if isinstance(module, nn.Linear)]
    if not linear_names:
        raise UserError(
            f"{type(net).__name__} has no Linear classifier layer to replace; "
            "choose a model with a Linear head (resnet*, efficientnet_*, convnext_*, vit_*, ...)"
        )
    return linear_names[-1]


def replace_head(net: nn.Module, num_classes: int) -> str:
    """Put a new, randomly initialised head of `num_classes` outputs in place; returns its name."""
    head = find_head(net)
    parent_name, _, attribute = head.rpartition(".")
    parent = net.get_submodule(parent_name) if parent_name else net
    old: nn.Linear = getattr(parent, attribute)
    setattr(parent, attribute, nn.Linear(old.in_features, num_classes))
    return head


def dropout_before_head(net: nn.Module, head: str) -> tuple[float, ...]:
    """Probabilities of the Dropout layers just before the head in its Sequential (EfficientNet's
    and MobileNet's classifiers)."""
    parent_name, _, attribute = head.rpartition(".")
    parent = net.get_submodule(parent_name) if parent_name else net
    if not isinstance(parent, nn.Sequential):
        return ()
    before = []
    for name, module in parent.named_children():
        if name == attribute:
            break
        before.append(module)
    return tuple(m.p for m in before if isinstance(m, nn.Dropout) and m.p > 0)


def gradcam_layer(net: nn.Module) -> GradCamLayer | None:
    """The last feature map before the head: a ViT's tokens as they enter its last attention
    (the class token alone reaches the head, so later tokens carry no gradient), a Swin's
    channels-first output, else the last top-level child with a convolution."""
    kind = type(net).__name__
    if kind == "VisionTransformer":
        *_, (last, _) = net.encoder.layers.named_children()
        return GradCamLayer(f"encoder.layers.{last}.ln_1", "tokens", prefix_tokens=1)
    if kind == "SwinTransformer":
        return GradCamLayer("permute")
    convolutional = [
        name
        for name, child in net.named_children()
        if any(isinstance(module, nn.Conv2d) for module in child.modules())
    ]
    return GradCamLayer(convolutional[-1]) if convolutional else None


@functools.cache
def classification_model_names() -> tuple[str, ...]:
    """Names torchvision can build as image classifiers (detection, video, ... excluded)."""
    return tuple(sorted(torchvision.models.list_models(module=torchvision.models)))


class TorchvisionSource(NetworkSource):
    name = "torchvision"

    def names(self) -> list[str]:
        return list(classification_model_names())

    def check_name(self, name: str) -> None:
        if name not in classification_model_names():
            raise UserError(
                f"model.name={name!r} is not a torchvision classification model; choose one "
                f"of: {', '.join(classification_model_names())} (or model=timm for timm's)"
            )

    def input_spec(self, name: str) -> InputSpec:
        try:
            transforms = torchvision.models.get_model_weights(name).DEFAULT.transforms()
            crop, resize = transforms.crop_size[0], transforms.resize_size[0]
            return InputSpec(
                crop, tuple(transforms.mean), tuple(transforms.std), round(crop / resize, 4)
            )
        except (AttributeError, IndexError, TypeError, ValueError):
            return IMAGENET

    def build(self, options: Mapping[str, Any], num_classes: int, image_size: int) -> nn.Module:
        kwargs = dict(options.get("kwargs") or {})
        net = torchvision.models.get_model(options["name"], weights=None, **kwargs)
        replace_head(net, num_classes)
        return net

    def describe(self, net: nn.Module, options: Mapping[str, Any]) -> NetworkDescription:
        head = find_head(net)
        family = FAMILIES.get(type(net).__name__)
        blocks = family(net) if family is not None else top_level_blocks(net, head)
        blocks = join_stragglers(net, head, with_parameters(net, blocks))
        layer = gradcam_layer(net)
        return NetworkDescription(
            head=head,
            blocks=tuple(blocks),
            gradcam=layer,
            gradcam_unavailable="" if layer else f"{type(net).__name__} has no convolution",
            dropout_before_head=dropout_before_head(net, head),
        )

    def pretrained_weights(
        self, options: Mapping[str, Any], image_size: int
    ) -> dict[str, torch.Tensor]:
        name = options["name"]
        try:
            weights = torchvision.models.get_model_weights(name).DEFAULT
            return weights.get_state_dict(progress=True, check_hash=True)
        except Exception as error:
            raise WeightsError(
                f"Could not obtain ImageNet weights for {name} ({type(error).__name__}: "
                f"{error}); pass model.weights_path=FILE (a local state dict or checkpoint) "
                "or model.pretrained=false (random init)"
            ) from error


SOURCE = TorchvisionSource()
