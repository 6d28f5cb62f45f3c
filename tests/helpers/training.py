"""Short Lightning runs of a model on a small image folder, logged to CSV."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Callback, LearningRateMonitor
from lightning.pytorch.loggers import CSVLogger

from src.data.sources.folder import ImageFolderDataModule


def fit_briefly(
    model: L.LightningModule,
    images: Path,
    log_dir: Path,
    epochs: int,
    callbacks: Sequence[Callback] = (),
    ckpt_path: Path | None = None,
) -> L.Trainer:
    """Fit `model` on the folder `images` for `epochs` of 2 batches on the CPU, logging every
    step and each optimizer group's learning rate to `<log_dir>/csv/version_0/metrics.csv`."""
    trainer = L.Trainer(
        max_epochs=epochs,
        limit_train_batches=2,
        limit_val_batches=1,
        accelerator="cpu",
        logger=CSVLogger(log_dir, name="csv", version=0),
        log_every_n_steps=1,
        enable_checkpointing=False,
        enable_progress_bar=False,
        num_sanity_val_steps=0,
        callbacks=[LearningRateMonitor("epoch"), *callbacks],
    )
    datamodule = ImageFolderDataModule(str(images), image_size=32, batch_size=4, num_workers=0)
    trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
    return trainer


def logged_metrics(log_dir: Path) -> list[dict[str, str]]:
    """The rows of the CSV log that `fit_briefly` wrote under `log_dir`."""
    with open(log_dir / "csv" / "version_0" / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))
