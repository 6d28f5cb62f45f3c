"""Score a model on a data module's evaluation images, with and without test-time augmentation."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch

from src.data.datamodule import ImageFolderDataModule
from src.evaluation.metrics import summarise
from src.evaluation.tta import VIEWS, TestTimeAugmentation


def score(
    trainer: L.Trainer,
    model: L.LightningModule,
    datamodule: ImageFolderDataModule,
    to_model_label: list[int],
    tta: str = "none",
) -> tuple[dict[str, Any], torch.Tensor, torch.Tensor]:
    """(metrics, probabilities, targets) over the data module's validation images; with `tta`
    other than none, on the averaged views, and the metrics say what it changed."""
    probabilities = torch.cat(trainer.predict(model, datamodule=datamodule)).float()
    targets = torch.tensor([to_model_label[sample.label] for sample in datamodule.val_samples])
    metrics = summarise(probabilities, targets, model.class_names)
    if tta == "none":
        return metrics, probabilities, targets
    averaged = TestTimeAugmentation(model, VIEWS[tta])
    probabilities = torch.cat(trainer.predict(averaged, datamodule=datamodule)).float()
    without = metrics
    metrics = summarise(probabilities, targets, model.class_names)
    metrics["tta"] = {
        "views": tta,
        "accuracy_without": without["accuracy"],
        "accuracy_with": metrics["accuracy"],
        "loss_without": without["loss"],
        "loss_with": metrics["loss"],
    }
    return metrics, probabilities, targets
