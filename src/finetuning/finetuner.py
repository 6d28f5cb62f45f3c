"""The fine-tuning state of one network: which parts train now, what unfreezes when, and the
optimizer groups that follow from it (discriminative learning rates)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from src.finetuning.blocks import last_blocks
from src.finetuning.freeze import FreezePolicy, UnfreezeStep
from src.finetuning.optimization import named_groups
from src.utils.errors import UserError


class FineTuner:
    """Applies a `FreezePolicy` to `net` and keeps track of the gradual-unfreezing steps taken.

    The LightningModule owns it, so the steps taken go into checkpoints and a resumed run
    rebuilds the same optimizer groups; the `GradualUnfreezing` callback advances it by epoch.
    """

    def __init__(
        self, net: nn.Module, head_name: str, policy: FreezePolicy, backbone_lr_mult: float = 1.0
    ) -> None:
        policy.validate(net)
        self.net = net
        self.head_name = head_name
        self.policy = policy
        self.backbone_lr_mult = float(backbone_lr_mult)
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
        head_name: str,
        freeze: Mapping[str, Any],
        backbone_lr_mult: float = 1.0,
    ) -> FineTuner:
        """From the `freeze` config group (`trainable`, or `trainable_blocks` counted from the
        output end; `train_bn`, `unfreeze_at`)."""
        trainable = freeze.get("trainable")
        if freeze.get("trainable_blocks") is not None:
            trainable = last_blocks(net, head_name, freeze["trainable_blocks"])
        policy = FreezePolicy.from_config(
            trainable, freeze.get("train_bn", False), freeze.get("unfreeze_at")
        )
        return cls(net, head_name, policy, backbone_lr_mult)

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

    def unfreeze(self, step: UnfreezeStep) -> list[nn.Parameter]:
        """Let the step's children train (BatchNorm included); returns the parameters that now
        train and did not before, for the optimizer."""
        before = {id(p) for p in self.net.parameters() if p.requires_grad}
        self.unfrozen.append(step.name)
        self._apply()
        return [p for p in self.net.parameters() if p.requires_grad and id(p) not in before]

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
        """One group of the trainable parameters; or, with a backbone multiplier or gradual
        unfreezing, named groups: `head` at `lr`, `backbone` and one group per unfrozen step at
        `lr * backbone_lr_mult` (LearningRateMonitor logs them as `lr-<Optimizer>/<name>`)."""
        steps = [("backbone", self.policy.trainable_names(self.net, self.head_name))]
        for index, name in enumerate(self.unfrozen):
            policy = self.policy.unfrozen(self.net, self.unfrozen[: index + 1])
            steps.append((name, policy.trainable_names(self.net, self.head_name)))
        return named_groups(self.net, self.head_name, steps, lr, self.backbone_lr_mult)

    def parameter_counts(self) -> tuple[int, int]:
        """(trainable, total) parameters of the network."""
        total = sum(parameter.numel() for parameter in self.net.parameters())
        trainable = sum(p.numel() for p in self.net.parameters() if p.requires_grad)
        return trainable, total
