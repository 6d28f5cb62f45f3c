"""Which parts of the network train: a small, explicit policy in the spirit of BaseFinetuning."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from src.errors import UserError


@dataclass(frozen=True)
class FreezePolicy:
    """`trainable` names the top-level children that train (None: all); the head always trains.

    BatchNorm layers inside frozen parts are kept in eval mode, so their running statistics stay
    those of the pretrained network, unless `train_bn` is set: then they train fully (weights and
    statistics), as fastai's `train_bn` does.
    """

    trainable: tuple[str, ...] | None = None
    train_bn: bool = False

    @classmethod
    def from_config(cls, trainable: list[str] | None, train_bn: bool = False) -> FreezePolicy:
        return cls(None if trainable is None else tuple(trainable), bool(train_bn))

    def validate(self, net: nn.Module) -> None:
        """Refuse names that are not top-level children of `net`, listing the valid ones."""
        children = [name for name, _ in net.named_children()]
        unknown = [name for name in self.trainable or () if name not in children]
        if unknown:
            raise UserError(
                f"freeze.trainable names {unknown} but {type(net).__name__} has no such child; "
                f"valid names: {', '.join(children)}"
            )

    def is_frozen(self, module_name: str, head_name: str) -> bool:
        """Whether the module with this dotted name sits in a frozen part of the network."""
        if self.trainable is None:
            return False
        if module_name == head_name or module_name.startswith(head_name + "."):
            return False
        return module_name.split(".", 1)[0] not in self.trainable

    def apply(self, net: nn.Module, head_name: str) -> None:
        """Set `requires_grad` on every parameter according to the policy."""
        self.validate(net)
        for module_name, module in net.named_modules():
            trains = not self.is_frozen(module_name, head_name) or (
                self.train_bn and isinstance(module, _BatchNorm)
            )
            for parameter in module.parameters(recurse=False):
                parameter.requires_grad_(trains)

    def frozen_batchnorms(self, net: nn.Module, head_name: str) -> list[_BatchNorm]:
        """BatchNorm layers that must stay in eval mode while the rest of the network trains."""
        if self.train_bn:
            return []
        return [
            module
            for name, module in net.named_modules()
            if isinstance(module, _BatchNorm) and self.is_frozen(name, head_name)
        ]


def count_parameters(net: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    total = sum(parameter.numel() for parameter in net.parameters())
    trainable = sum(parameter.numel() for parameter in net.parameters() if parameter.requires_grad)
    return trainable, total
