"""The fine-tuning state of one network: which parts train now, what unfreezes when, and the
optimizer groups that follow from it (discriminative learning rates, layer-wise decay)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from src.finetuning.blocks import last_blocks
from src.finetuning.freeze import FreezePolicy, UnfreezeStep
from src.finetuning.optimization import RateScales, check_layer_decay, named_groups
from src.networks.description import NetworkDescription
from src.utils.errors import UserError


class FineTuner:
    """Applies a `FreezePolicy` to `net` and keeps track of the gradual-unfreezing steps taken.

    The LightningModule owns it, so the steps taken go into checkpoints and a resumed run
    rebuilds the same optimizer groups; the `GradualUnfreezing` callback advances it by epoch.
    """

    def __init__(
        self,
        net: nn.Module,
        head_name: str,
        policy: FreezePolicy,
        scales: RateScales | None = None,
    ) -> None:
        policy.validate(net)
        self.net = net
        self.head_name = head_name
        self.policy = policy
        #: Each parameter's learning rate relative to the head's.
        self.scales = scales or RateScales()
        #: Entries of the unfreezing schedule taken so far, in order.
        self.unfrozen: list[str] = []
        #: BatchNorm layers whose running statistics stay those of the starting weights.
        self.frozen_batchnorm_names: list[str] = []
        self._apply()

    @property
    def frozen_batchnorms(self) -> list[_BatchNorm]:
        """Looked up by name each time: `sync_batchnorm` replaces the BatchNorm modules with
        SyncBatchNorm ones after the model is built, and those must stay frozen too."""
        return [self.net.get_submodule(name) for name in self.frozen_batchnorm_names]

    @classmethod
    def from_config(
        cls,
        net: nn.Module,
        description: NetworkDescription,
        freeze: Mapping[str, Any],
        optimizer: Mapping[str, Any] | None = None,
    ) -> FineTuner:
        """From the `freeze` config group (`trainable`, or `trainable_blocks` counted from the
        output end of the description's blocks; `train_bn`, `unfreeze_at`) and the `optimizer`
        group's `backbone_lr_mult` and `layer_decay`."""
        trainable = freeze.get("trainable")
        if freeze.get("trainable_blocks") is not None:
            network = type(net).__name__
            trainable = last_blocks(description.blocks, freeze["trainable_blocks"], network)
        policy = FreezePolicy.from_config(
            trainable, freeze.get("train_bn", False), freeze.get("unfreeze_at")
        )
        optimizer = optimizer or {}
        layer_decay = optimizer.get("layer_decay")
        check_layer_decay(layer_decay)
        scales = RateScales(
            float(optimizer.get("backbone_lr_mult", 1.0)),
            None if layer_decay is None else float(layer_decay),
            description.blocks,
        )
        return cls(net, description.head, policy, scales)

    def _apply(self) -> None:
        policy = self.policy.unfrozen(self.net, self.unfrozen)
        policy.apply(self.net, self.head_name)
        self.frozen_batchnorm_names = policy.frozen_batchnorm_names(self.net, self.head_name)
        self.hold_frozen_batchnorms()

    def hold_frozen_batchnorms(self) -> None:
        """Frozen BatchNorm in eval mode, every other BatchNorm in the network's own mode.

        Called whenever the module's mode is set: Lightning records and restores each module's
        mode around validation, so the right modes must hold from construction on.
        """
        frozen = {id(module) for module in self.frozen_batchnorms}
        for module in self.net.modules():
            if isinstance(module, _BatchNorm):
                module.train(self.net.training and id(module) not in frozen)

    def due(self, epoch: int) -> list[UnfreezeStep]:
        """Scheduled steps up to `epoch` that have not been taken yet, in schedule order."""
        steps = self.policy.unfreeze_steps(self.net)
        return [step for step in steps if step.epoch <= epoch and step.name not in self.unfrozen]

    def unfreeze(self, step: UnfreezeStep) -> list[tuple[str, list[nn.Parameter], float]]:
        """Let the step's children train (BatchNorm included); returns the optimizer groups of
        the parameters that now train and did not before: (name, parameters, learning rate
        relative to the head's), one per block with a layer decay."""
        before = {name for name, p in self.net.named_parameters() if p.requires_grad}
        self.unfrozen.append(step.name)
        self._apply()
        parameters = dict(self.net.named_parameters())
        new = [name for name, p in parameters.items() if p.requires_grad and name not in before]
        return [
            (group, [parameters[name] for name in names], scale)
            for group, names, scale in self.scales.split(step.name, new)
        ]

    def restore(self, unfrozen: list[str]) -> None:
        """The steps a checkpoint had taken; refused when the schedule no longer has them."""
        scheduled = {name for name, _ in self.policy.unfreeze_at}
        if not set(unfrozen) <= scheduled:
            raise UserError(
                f"the checkpoint has unfrozen {unfrozen}, but freeze.unfreeze_at schedules "
                f"{sorted(scheduled)}; resume with the freeze config it was trained with"
            )
        self.unfrozen = list(unfrozen)
        self._apply()

    def parameter_groups(self, lr: float) -> list[dict[str, Any]]:
        """One group of the trainable parameters; or, with a backbone multiplier, a layer decay
        or gradual unfreezing, named groups: `head` at `lr`, then the backbone's (`backbone`, or
        one per block with a layer decay) and each unfrozen step's at their scale of `lr`
        (LearningRateMonitor logs them as `lr-<Optimizer>/<name>`)."""
        steps = [("backbone", self.policy.trainable_names(self.net, self.head_name))]
        for index, name in enumerate(self.unfrozen):
            policy = self.policy.unfrozen(self.net, self.unfrozen[: index + 1])
            steps.append((name, policy.trainable_names(self.net, self.head_name)))
        return named_groups(self.net, self.head_name, steps, lr, self.scales)

    def parameter_counts(self) -> tuple[int, int]:
        """(trainable, total) parameters of the network."""
        total = sum(parameter.numel() for parameter in self.net.parameters())
        trainable = sum(p.numel() for p in self.net.parameters() if p.requires_grad)
        return trainable, total
