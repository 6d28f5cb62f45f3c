"""Score a model on a data module's evaluation images, with and without test-time augmentation."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from src.data.datamodule import ImageDataModule
from src.data.samples import Sample
from src.evaluation.metrics import summarise
from src.evaluation.multilabel import summarise_multilabel
from src.evaluation.tta import VIEWS, View, averaged
from src.models.tasks import MULTILABEL


class TestTimeAugmentation(L.LightningModule):
    """`trainer.predict` through `model` with its probabilities averaged over `views`."""

    def __init__(self, model: L.LightningModule, views: tuple[View, ...]) -> None:
        super().__init__()
        self.model = model
        self.views = views

    def predict_step(self, batch, batch_idx: int) -> torch.Tensor:
        images = batch[0] if isinstance(batch, (list, tuple)) else batch
        return averaged(self.model.probabilities, self.views, images)


def score(
    trainer: L.Trainer,
    model: L.LightningModule,
    datamodule: ImageDataModule,
    to_model_label: list[int],
    tta: str = "none",
) -> tuple[dict[str, Any], torch.Tensor, torch.Tensor]:
    """(metrics, probabilities, targets) over the data module's validation images; with `tta`
    other than none, on the averaged views, and the metrics say what it changed."""
    probabilities = torch.cat(trainer.predict(model, datamodule=datamodule)).float()
    targets = model_targets(datamodule.val_samples, to_model_label, model)
    metrics = summary(model, probabilities, targets)
    if tta == "none":
        return metrics, probabilities, targets
    with_tta = TestTimeAugmentation(model, VIEWS[tta])
    probabilities = torch.cat(trainer.predict(with_tta, datamodule=datamodule)).float()
    without = metrics
    metrics = summary(model, probabilities, targets)
    headline = headline_metric(model)
    metrics["tta"] = {
        "views": tta,
        "metric": headline,
        "accuracy_without": without[headline],
        "accuracy_with": metrics[headline],
        "loss_without": without["loss"],
        "loss_with": metrics["loss"],
    }
    return metrics, probabilities, targets


def headline_metric(model: L.LightningModule) -> str:
    """The metrics.json key of the model's task's main metric: accuracy, or mAP."""
    return "mean_average_precision" if model.task == MULTILABEL else "accuracy"


def summary(
    model: L.LightningModule, probabilities: torch.Tensor, targets: torch.Tensor
) -> dict[str, Any]:
    """The evaluation metrics of the model's task (multi-label: at its thresholds)."""
    if model.task == MULTILABEL:
        return summarise_multilabel(
            probabilities, targets, model.class_names, model.thresholds.float().cpu()
        )
    return summarise(probabilities, targets, model.class_names)


def model_targets(
    samples: list[Sample], to_model_label: list[int], model: L.LightningModule
) -> torch.Tensor:
    """The samples' targets in the model's classes: [N] indices, or [N, C] multi-hot."""
    if model.task != MULTILABEL:
        return torch.tensor([to_model_label[sample.label] for sample in samples])
    targets = torch.zeros(len(samples), len(model.class_names))
    for row, sample in enumerate(samples):
        targets[row, [to_model_label[label] for label in sample.labels]] = 1.0
    return targets


def probabilities_over(
    model: torch.nn.Module, images: Dataset, batch_size: int, device: torch.device
) -> torch.Tensor:
    """The model's class probabilities [N, C] for a dataset of (uint8 image, label) pairs, in one
    process without a Trainer (for use inside a running fit, whatever its strategy)."""
    model = model.to(device).eval()
    batches = []
    with torch.inference_mode():
        for batch, _ in DataLoader(images, batch_size=batch_size):
            batches.append(model.probabilities(batch.to(device)).cpu())
    return torch.cat(batches)
