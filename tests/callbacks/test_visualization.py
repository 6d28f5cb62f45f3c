"""Tests for the TensorBoardFigures callback with a tiny module that honours the module contract."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.loggers import TensorBoardLogger
from tensorboard.backend.event_processing.event_accumulator import IMAGES, EventAccumulator
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from src.callbacks.visualization import TensorBoardFigures

BATCH_SIZE = 4
VAL_BATCHES = 2
TAGS = ("train/augmented_images", "val/predictions", "val/confusion_matrix")


class TinyClassifier(LightningModule):
    """Linear layer over 8x8 uint8 images; normalises on the device like the real module."""

    def __init__(self) -> None:
        super().__init__()
        self.class_names = ["cat", "dog", "bird"]
        self.head = nn.Linear(3 * 8 * 8, len(self.class_names))

    def forward(self, images: Tensor) -> Tensor:
        return self.head((images.float() / 255.0).flatten(1))

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        images, targets = batch
        return nn.functional.cross_entropy(self(images), targets)

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> dict[str, Tensor]:
        images, targets = batch
        return {"preds": self(images).argmax(dim=1).detach(), "targets": targets.detach()}

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def _loader(self, seed: int) -> DataLoader:
        generator = torch.Generator().manual_seed(seed)
        images = torch.randint(0, 256, (12, 3, 8, 8), dtype=torch.uint8, generator=generator)
        targets = torch.randint(0, len(self.class_names), (12,), generator=generator)
        return DataLoader(TensorDataset(images, targets), batch_size=BATCH_SIZE)

    def train_dataloader(self) -> DataLoader:
        return self._loader(seed=0)

    def val_dataloader(self) -> DataLoader:
        return self._loader(seed=1)


def _fit(
    logger: TensorBoardLogger | bool, callback: TensorBoardFigures, max_epochs: int = 2
) -> None:
    trainer = Trainer(
        max_epochs=max_epochs,
        limit_train_batches=2,
        limit_val_batches=VAL_BATCHES,
        logger=logger,
        callbacks=[callback],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=1,
        accelerator="cpu",
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        trainer.fit(TinyClassifier())


def _image_steps(log_dir: str) -> dict[str, list[int]]:
    """Steps of every image event per tag, read back from the TensorBoard event file."""
    accumulator = EventAccumulator(log_dir, size_guidance={IMAGES: 0})
    accumulator.Reload()
    return {
        tag: [event.step for event in accumulator.Images(tag)] for tag in accumulator.Tags()[IMAGES]
    }


def test_logs_one_entry_per_epoch_for_each_tag(tmp_path: Path) -> None:
    logger = TensorBoardLogger(tmp_path)
    _fit(logger, TensorBoardFigures())

    steps = _image_steps(logger.log_dir)
    for tag in TAGS:
        assert len(steps.get(tag, [])) == 2, f"{tag}: {steps}"
    # The training grid is taken before the first optimizer step of each epoch.
    assert steps["train/augmented_images"] == [0, 2]


def test_every_n_epochs_skips_other_epochs(tmp_path: Path) -> None:
    logger = TensorBoardLogger(tmp_path)
    _fit(logger, TensorBoardFigures(num_images=3, every_n_epochs=2), max_epochs=3)

    steps = _image_steps(logger.log_dir)
    for tag in TAGS:
        assert len(steps.get(tag, [])) == 2, f"{tag}: {steps}"  # epochs 0 and 2


def test_runs_without_logger() -> None:
    callback = TensorBoardFigures()
    _fit(False, callback)
    assert callback.last_confusion_matrix is None


def test_confusion_matrix_counts_all_validation_samples(tmp_path: Path) -> None:
    callback = TensorBoardFigures(num_images=2)
    _fit(TensorBoardLogger(tmp_path), callback)

    matrix = callback.last_confusion_matrix
    assert matrix is not None
    assert matrix.shape == (3, 3)
    assert int(matrix.sum()) == VAL_BATCHES * BATCH_SIZE


def test_rejects_invalid_arguments() -> None:
    with pytest.raises(ValueError):
        TensorBoardFigures(num_images=0)
    with pytest.raises(ValueError):
        TensorBoardFigures(every_n_epochs=0)
