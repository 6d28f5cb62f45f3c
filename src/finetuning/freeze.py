"""Which parts of the network train: a small, explicit policy in the spirit of BaseFinetuning."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from src.networks.blocks import within, within_any
from src.utils.errors import UserError

#: In `freeze.unfreeze_at`, every top-level child that nothing else names.
REST = "rest"


@dataclass(frozen=True)
class FreezePolicy:
    """`trainable` names the modules that train (None: all), top-level children or any dotted
    module name, or a parameter that belongs to no module of its own (a ViT's class token);
    `freeze.trainable_blocks` fills it with the last blocks. The head always trains.

    BatchNorm layers inside frozen parts are kept in eval mode, so their running statistics stay
    those of the pretrained network, unless `train_bn` is set: then they train fully (weights and
    statistics), as fastai's `train_bn` does.
    """

    trainable: tuple[str, ...] | None = None
    train_bn: bool = False
    #: Gradual unfreezing: (name, epoch) pairs; the named child starts to train at that epoch.
    #: The name `rest` stands for every child that neither `trainable` nor another entry names.
    unfreeze_at: tuple[tuple[str, int], ...] = ()

    @classmethod
    def from_config(
        cls,
        trainable: list[str] | None,
        train_bn: bool = False,
        unfreeze_at: Mapping[str, int] | None = None,
    ) -> FreezePolicy:
        schedule = tuple((str(name), epoch) for name, epoch in (unfreeze_at or {}).items())
        return cls(None if trainable is None else tuple(trainable), bool(train_bn), schedule)

    def validate(self, net: nn.Module) -> None:
        """Refuse names that are not modules of `net`, listing its top-level children, and
        unfreezing schedules that cannot take effect."""
        children = [name for name, _ in net.named_children()]
        modules = {name for name, _ in net.named_modules()} | dict(net.named_parameters()).keys()
        unknown = [name for name in self.trainable or () if name not in modules]
        if unknown:
            raise UserError(
                f"freeze.trainable names {unknown} but {type(net).__name__} has no such module; "
                f"valid names: {', '.join(children)} (or a dotted module name; "
                "freeze.trainable_blocks=N trains the last N blocks of any model)"
            )
        if not self.unfreeze_at:
            return
        if self.trainable is None:
            raise UserError(
                "freeze.unfreeze_at needs frozen parts to unfreeze, but freeze.trainable is null "
                "(everything trains); use freeze=gradual or set freeze.trainable=[]"
            )
        unknown = [n for n, _ in self.unfreeze_at if n not in modules and n != REST]
        if unknown:
            raise UserError(
                f"freeze.unfreeze_at names {unknown} but {type(net).__name__} has no such child; "
                f"valid names: {', '.join(children)}, or {REST} (everything still frozen)"
            )
        for name, epoch in self.unfreeze_at:
            if name in self.trainable:
                raise UserError(f"freeze.unfreeze_at names {name}, which freeze.trainable trains")
            if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 1:
                raise UserError(
                    f"freeze.unfreeze_at.{name}={epoch!r}: give an epoch number from 1 on "
                    "(to train it from the start, list it in freeze.trainable)"
                )

    def unfreeze_steps(self, net: nn.Module) -> list[UnfreezeStep]:
        """The schedule in the order it takes effect: by epoch, then as the children appear in
        the network, `rest` last. Optimizer groups are added in this order, so a checkpoint's
        optimizer state always matches the groups a resumed run rebuilds."""
        order = [name for name, _ in net.named_children()]
        scheduled = {name for name, _ in self.unfreeze_at}
        rest = tuple(n for n in order if n not in (self.trainable or ()) and n not in scheduled)
        steps = [
            UnfreezeStep(name, epoch, rest if name == REST else (name,))
            for name, epoch in self.unfreeze_at
        ]
        position = {name: index for index, (name, _) in enumerate(net.named_modules())}
        return sorted(steps, key=lambda step: (step.epoch, position.get(step.name, len(position))))

    def unfrozen(self, net: nn.Module, names: Iterable[str]) -> FreezePolicy:
        """The policy once the scheduled entries `names` have been unfrozen."""
        if self.trainable is None:
            return self
        steps = {step.name: step for step in self.unfreeze_steps(net)}
        added = [child for name in names for child in steps[name].children]
        return FreezePolicy(tuple(dict.fromkeys((*self.trainable, *added))), self.train_bn)

    def is_frozen(self, module_name: str, head_name: str) -> bool:
        """Whether the module with this dotted name sits in a frozen part of the network."""
        if self.trainable is None:
            return False
        if within(module_name, head_name):
            return False
        return not within_any(module_name, self.trainable)

    def trainable_names(self, net: nn.Module, head_name: str) -> set[str]:
        """Dotted names of the parameters that train under this policy."""
        names: set[str] = set()
        for module_name, module in net.named_modules():
            trains = not self.is_frozen(module_name, head_name) or (
                self.train_bn and isinstance(module, _BatchNorm)
            )
            prefix = f"{module_name}." if module_name else ""
            for name, _ in module.named_parameters(recurse=False):
                if trains or not self.is_frozen(prefix + name, head_name):
                    names.add(prefix + name)
        return names

    def apply(self, net: nn.Module, head_name: str) -> None:
        """Set `requires_grad` on every parameter according to the policy."""
        trainable = self.trainable_names(net, head_name)
        for name, parameter in net.named_parameters():
            parameter.requires_grad_(name in trainable)

    def frozen_batchnorm_names(self, net: nn.Module, head_name: str) -> list[str]:
        """BatchNorm layers that must stay in eval mode while the rest of the network trains."""
        if self.train_bn:
            return []
        return [
            name
            for name, module in net.named_modules()
            if isinstance(module, _BatchNorm) and self.is_frozen(name, head_name)
        ]


@dataclass(frozen=True)
class UnfreezeStep:
    """One entry of a gradual-unfreezing schedule: `children` start to train at `epoch`."""

    name: str
    epoch: int
    children: tuple[str, ...]
