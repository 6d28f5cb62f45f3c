"""Gradual unfreezing (`freeze.unfreeze_at`), in the spirit of fastai's `fine_tune` and Lightning's
`BackboneFinetuning`, and the `params/trainable` metric whenever the trainable count changes.

The module (`ImageClassifier`) owns the state: which steps have been taken, saved in checkpoints,
so that its `configure_optimizers` rebuilds every group on resume. This callback only acts on the
schedule: at the configured epochs it unfreezes and adds the new parameters to the optimizer.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import lightning as L
from lightning.pytorch.callbacks import Callback

from src.finetuning.param_groups import add_group, check_growable
from src.utils.errors import UserError

if TYPE_CHECKING:
    from src.models.classifier import ImageClassifier

log = logging.getLogger(__name__)

METRIC = "params/trainable"


class GradualUnfreezing(Callback):
    """Added by `ImageClassifier.configure_callbacks`, so every run logs its trainable count."""

    def setup(self, trainer: L.Trainer, pl_module: ImageClassifier, stage: str) -> None:
        """Run first among the epoch-start hooks, so that LearningRateMonitor, which logs there,
        already sees a group added at this epoch (a new list: Lightning is iterating the old)."""
        others = [callback for callback in trainer.callbacks if callback is not self]
        trainer.callbacks = [self, *others]

    def on_fit_start(self, trainer: L.Trainer, pl_module: ImageClassifier) -> None:
        """Refuse what cannot work before the first epoch rather than at the first unfreeze."""
        if not pl_module.freeze_policy.unfreeze_at:
            return
        if trainer.world_size > 1:
            # DDP registers for gradient averaging only the parameters that train when it wraps
            # the model; parameters unfrozen later would silently drift apart between processes.
            raise UserError(
                "gradual unfreezing (freeze.unfreeze_at) runs on one device only; for several "
                "devices use a fixed freeze policy, e.g. freeze=none optimizer.backbone_lr_mult=0.1"
            )
        check_growable([config.scheduler for config in trainer.lr_scheduler_configs])

    def on_train_start(self, trainer: L.Trainer, pl_module: ImageClassifier) -> None:
        self._log_count(trainer, pl_module)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: ImageClassifier) -> None:
        epoch = trainer.current_epoch
        due = pl_module.due_unfreezing(epoch)
        if not due:
            return
        optimizer = trainer.optimizers[0]
        schedulers = [config.scheduler for config in trainer.lr_scheduler_configs]
        unfrozen: set[int] = set()
        for step in due:
            parameters = pl_module.unfreeze(step)
            if parameters:
                add_group(optimizer, schedulers, step.name, parameters, pl_module.backbone_lr_mult)
            unfrozen.update(id(p) for p in parameters)
        trainable, total = self._log_count(trainer, pl_module)
        children = [
            name
            for name, child in pl_module.net.named_children()
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
    def _log_count(trainer: L.Trainer, pl_module: ImageClassifier) -> tuple[int, int]:
        trainable, total = pl_module.parameter_counts()
        for logger in trainer.loggers:
            logger.log_metrics({METRIC: float(trainable)}, step=trainer.global_step)
        return trainable, total
