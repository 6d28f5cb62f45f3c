"""The head: the last Linear layer of a torchvision classifier, replaced for the new classes and
always trained. Everything before it is the backbone."""

from __future__ import annotations

from torch import nn

from src.utils.errors import UserError


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
    head_name = find_head(net)
    parent_name, _, attribute = head_name.rpartition(".")
    parent = net.get_submodule(parent_name) if parent_name else net
    old_head: nn.Linear = getattr(parent, attribute)
    setattr(parent, attribute, nn.Linear(old_head.in_features, num_classes))
    return head_name


def in_head(name: str, head_name: str) -> bool:
    """Whether the module, parameter or state-dict key `name` belongs to the head."""
    return name == head_name or name.startswith(head_name + ".")


def dropout_before_head(net: nn.Module, head_name: str) -> list[float]:
    """Probabilities of the Dropout layers just before the head in its Sequential (EfficientNet's
    and MobileNet's classifiers): cached features are taken at the head's input in eval mode, so
    training on them applies these itself, as the network would in training."""
    parent_name, _, attribute = head_name.rpartition(".")
    parent = net.get_submodule(parent_name) if parent_name else net
    if not isinstance(parent, nn.Sequential):
        return []
    before = []
    for name, module in parent.named_children():
        if name == attribute:
            break
        before.append(module)
    return [module.p for module in before if isinstance(module, nn.Dropout) and module.p > 0]
