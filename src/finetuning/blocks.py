"""Each model family's backbone as ordered blocks, input side first: what
`freeze.trainable_blocks=N` counts from the output end, for any torchvision classifier (in the
spirit of fastai's model splits and timm's group matchers).

A block is one or more modules by dotted name. The table names the families whose top-level
children do not already read as stages; any other network's blocks are its top-level children
that hold parameters, the head excepted.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from src.finetuning.head import in_head
from src.utils.errors import UserError

Block = tuple[str, ...]


def children_of(net: nn.Module, path: str) -> list[Block]:
    """Each child of the module at `path` as a block of its own."""
    return [(f"{path}.{name}",) for name, _ in net.get_submodule(path).named_children()]


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


def backbone_blocks(net: nn.Module, head_name: str) -> list[Block]:
    """The backbone's blocks, input side first; blocks without parameters are left out. Layers
    with parameters between the last block and the head (ConvNeXt's and MobileNetV3's in their
    `classifier`) join the last block."""
    family = FAMILIES.get(type(net).__name__)
    if family is not None:
        blocks = family(net)
    else:
        blocks = [(name,) for name, _ in net.named_children() if not in_head(name, head_name)]
    blocks = [block for block in blocks if _has_parameters(net, block)]
    if blocks:
        blocks[-1] = (*blocks[-1], *_outside_blocks(net, head_name, blocks))
    return blocks


def _outside_blocks(net: nn.Module, head_name: str, blocks: list[Block]) -> list[str]:
    """Modules with parameters that no block holds, the head and the blocks' containers (whose
    own parameters, such as ViT's class token, train only when everything does) excepted."""
    covered = [name for block in blocks for name in block]
    outside: dict[str, None] = {}
    for parameter, _ in net.named_parameters():
        module = parameter.rpartition(".")[0]
        if in_head(parameter, head_name) or _inside(parameter, covered):
            continue
        if module == "" or any(name.startswith(module + ".") for name in covered):
            continue
        outside[module] = None
    return list(outside)


def _inside(name: str, modules: list[str]) -> bool:
    return any(name == module or name.startswith(module + ".") for module in modules)


def last_blocks(net: nn.Module, head_name: str, count: int) -> list[str]:
    """Module names of the backbone's last `count` blocks (`freeze.trainable_blocks`)."""
    blocks = backbone_blocks(net, head_name)
    if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= len(blocks):
        raise UserError(
            f"freeze.trainable_blocks={count!r}: {type(net).__name__} has {len(blocks)} blocks "
            f"({', '.join('+'.join(block) for block in blocks)}); give 0 (the head alone) to "
            f"{len(blocks)} (everything), or freeze.trainable_blocks=null"
        )
    return [name for block in blocks[len(blocks) - count :] for name in block]


def _has_parameters(net: nn.Module, block: Block) -> bool:
    return any(True for name in block for _ in net.get_submodule(name).parameters())
