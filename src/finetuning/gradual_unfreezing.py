"""Gradual unfreezing (`freeze.unfreeze_at`), in the spirit of fastai's `fine_tune` and Lightning's
`BackboneFinetuning`, and the `params/trainable` metric whenever the trainable count changes.

The module's `FineTuner` owns the state (which steps have been taken, saved in checkpoints), so
that `configure_optimizers` rebuilds every group on resume. This callback only acts on the
schedule: at the configured epochs it unfreezes and adds the new parameters to the optimizer.
"""

from __future__ import annotations

import logging
from typing import Protocol

import lightning as L
from lightning.pytorch.callbacks import Callback

from src.finetuning.finetuner import FineTuner
from src.finetuning.optimization import add_group, check_growable
from src.utils.errors import UserError

log = logging.getLogger(__name__)

METRIC = "params/trainable"


class FineTunedModule(Protocol):
    """What this callback needs of the LightningModule."""

    finetuner: FineTuner


class GradualUnfreezing(Callback):
    """Added by the module's `configure_callbacks`, so every run logs its trainable count."""

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        """Run first among the epoch-start hooks, so that LearningRateMonitor, which logs there,
        already sees a group added at this epoch (a new list: Lightning is iterating the old)."""
        others = [callback for callback in trainer.callbacks if callback is not self]
        trainer.callbacks = [self, *others]

    def on_fit_start(self, trainer: L.Trainer, pl_module: FineTunedModule) -> None:
        """Refuse what cannot work before the first epoch rather than at the first unfreeze."""
        if not pl_module.finetuner.policy.unfreeze_at:
            return
        if trainer.world_size > 1:
            # DDP registers for gradient averaging only the parameters that train when it wraps
            # the model; parameters unfrozen later would silently drift apart between processes.
            raise UserError(
                "gradual unfreezing (freeze.unfreeze_at) runs on one device only; for several "
                "devices use a fixed freeze policy, e.g. freeze=none optimizer.backbone_lr_mult=0.1"
            )
        check_growable([config.scheduler for config in trainer.lr_scheduler_configs])

    def on_train_start(self, trainer: L.Trainer, pl_module: FineTunedModule) -> None:
        self._log_count(trainer, pl_module.finetuner)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: FineTunedModule) -> None:
        finetuner = pl_module.finetuner
        epoch = trainer.current_epoch
        due = finetuner.due(epoch)
        if not due:
            return
        optimizer = trainer.optimizers[0]
        schedulers = [config.scheduler for config in trainer.lr_scheduler_configs]
        unfrozen: set[int] = set()
        for step in due:
            for name, parameters, scale in finetuner.unfreeze(step):
                add_group(optimizer, schedulers, name, parameters, scale)
                unfrozen.update(id(p) for p in parameters)
        trainable, total = self._log_count(trainer, finetuner)
        children = [
            name
            for name, child in finetuner.net.named_children()
            if any(id(p) in unfrozen for p in child.parameters())
        ]
        log.info(
            "epoch %d: unfrozen %s, %s / %s parameters trainable",
            epoch,
            ", ".join(children) or "nothing new",
            f"{trainable:,}",
            f"{total:,}",
        )

    @staticmethod
    def _log_count(trainer: L.Trainer, finetuner: FineTuner) -> tuple[int, int]:
        trainable, total = finetuner.parameter_counts()
        for logger in trainer.loggers:
            logger.log_metrics({METRIC: float(trainable)}, step=trainer.global_step)
        return trainable, total
