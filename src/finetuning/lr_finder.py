"""`tune=lr_find`: Lightning's learning-rate finder before training, its plot kept, its
suggestion used (or only reported).

The finder trains a few steps at learning rates rising from `min_lr` to `max_lr` with every
optimizer group at the same rate, then restores the weights; it suggests the rate where the loss
fell fastest. The suggestion becomes `optimizer.lr`, the head's rate: with
`optimizer.backbone_lr_mult` the backbone then trains at the suggestion times the multiplier,
and with gradual unfreezing the finder sees the starting state (the head alone, or what
`freeze.trainable` trains), each later group joining at the head's rate times the multiplier.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.tuner import Tuner
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

log = logging.getLogger(__name__)

PLOT_FILE = "lr_find.png"


def find_learning_rate(
    trainer: L.Trainer,
    model: L.LightningModule,
    datamodule: L.LightningDataModule,
    settings: Mapping[str, Any],
    run_dir: Path,
) -> float | None:
    """Run the finder; write `<run dir>/lr_find.png` (and the figure and suggestion to
    TensorBoard); with `settings.use_suggestion`, train at the suggestion. Returns it (None when
    the loss never fell enough to suggest one)."""
    epochs = trainer.fit_loop.max_epochs
    trainer.fit_loop.max_epochs = -1  # the finder's steps, however few batches an epoch has
    try:
        finder = Tuner(trainer).lr_find(
            model,
            datamodule=datamodule,
            min_lr=float(settings["min_lr"]),
            max_lr=float(settings["max_lr"]),
            num_training=int(settings["num_training"]),
            update_attr=False,
        )
    finally:
        trainer.fit_loop.max_epochs = epochs
    suggestion = None if finder is None else finder.suggestion()  # the same in every process
    use = suggestion is not None and settings.get("use_suggestion", True)
    configured = float(model.hparams.optimizer["lr"])
    if use:
        use_learning_rate(model, suggestion)
    if finder is None or not trainer.is_global_zero:
        return suggestion
    plot = run_dir / PLOT_FILE
    figure = Figure(figsize=(6, 4))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    finder.plot(suggest=suggestion is not None, ax=axes)
    axes.set_title(f"suggested learning rate: {suggestion:.3g}" if suggestion else "no suggestion")
    figure.savefig(plot, dpi=100)
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.experiment.add_figure("tune/lr_find", figure, 0)
            if suggestion is not None:
                logger.experiment.add_scalar("tune/lr_suggestion", suggestion, 0)
    if suggestion is None:
        log.warning(
            "The learning-rate finder found no rate to suggest (the loss did not fall, or "
            "tune.num_training is too small); training at optimizer.lr=%.3g. See %s",
            configured,
            plot,
        )
    else:
        log.info(
            "Learning-rate finder: %.3g suggested (optimizer.lr was %.3g), %s; plot in %s",
            suggestion,
            configured,
            "training at it" if use else "not used (tune.use_suggestion=false)",
            plot,
        )
    return suggestion


def use_learning_rate(model: L.LightningModule, lr: float) -> None:
    """Train at `lr`: the optimizer's rate, and a one-cycle peak that followed it."""
    previous = float(model.hparams.optimizer["lr"])
    model.hparams.optimizer["lr"] = lr
    scheduler = (model.hparams.get("scheduler") or {}).get("scheduler") or {}
    if scheduler.get("max_lr") == previous:
        scheduler["max_lr"] = lr
