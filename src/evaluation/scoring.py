"""Score a model on a data module's evaluation images: logits of each view once, then the metrics
of any temperature and with or without test-time augmentation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from src.data.datamodule import ImageDataModule
from src.data.samples import Sample
from src.evaluation.metrics import calibration_error, per_image_losses, summarise
from src.evaluation.multilabel import per_image_losses as multilabel_losses
from src.evaluation.multilabel import summarise_multilabel
from src.evaluation.selective import answers, risk_coverage
from src.evaluation.tta import VIEWS, View
from src.models.calibration import scaled_probabilities, temperature_value
from src.models.tasks import MULTILABEL


class ViewLogits(L.LightningModule):
    """`trainer.predict` through `model`: the logits of each of `views` of every image, [B, V, C]
    (the probabilities of any temperature follow from them)."""

    def __init__(self, model: L.LightningModule, views: tuple[View, ...] = VIEWS["none"]) -> None:
        super().__init__()
        self.model = model
        self.views = views

    def predict_step(self, batch, batch_idx: int) -> torch.Tensor:
        images = batch[0] if isinstance(batch, (list, tuple)) else batch
        return torch.stack([self.model(view(images)).float() for view in self.views], dim=1)


def view_logits(
    trainer: L.Trainer,
    model: L.LightningModule,
    datamodule: ImageDataModule,
    views: tuple[View, ...] = VIEWS["none"],
) -> torch.Tensor:
    """The logits [N, V, C] of every view of the data module's validation images."""
    return torch.cat(trainer.predict(ViewLogits(model, views), datamodule=datamodule)).float()


def view_probabilities(logits: torch.Tensor, temperature: torch.Tensor, task: str) -> torch.Tensor:
    """The probabilities at `temperature` of the views of `logits` [N, V, C], averaged."""
    views = [scaled_probabilities(logits[:, v], temperature, task) for v in range(logits.shape[1])]
    return torch.stack(views).mean(dim=0)


@dataclass
class Scored:
    """An evaluation's metrics and what its figures need: the probabilities at the model's
    temperature, and at temperature 1 (`uncalibrated`) when that differs."""

    metrics: dict[str, Any]
    probabilities: torch.Tensor
    targets: torch.Tensor
    uncalibrated: torch.Tensor | None = None


def score(
    model: L.LightningModule,
    logits: torch.Tensor,
    targets: torch.Tensor,
    tta: str = "none",
    fitted_on: str | None = None,
) -> Scored:
    """The metrics of `logits` [N, V, C] (the views of `tta`) at the model's temperature: with
    several views on their averaged probabilities, saying what they changed; the calibration
    before (temperature 1) and after (the model's, fitted on `fitted_on`), and for one class per
    image the risk-coverage curve."""
    temperature, task = model.temperature.cpu(), model.task
    probabilities = view_probabilities(logits, temperature, task)
    metrics = summary(model, probabilities, targets)
    if logits.shape[1] > 1:
        without = summary(model, view_probabilities(logits[:, :1], temperature, task), targets)
        headline = headline_metric(model)
        metrics["tta"] = {
            "views": tta,
            "metric": headline,
            "accuracy_without": without[headline],
            "accuracy_with": metrics[headline],
            "loss_without": without["loss"],
            "loss_with": metrics["loss"],
        }
    multi_label = task == MULTILABEL
    uncalibrated = None
    metrics["calibration"] = {
        "temperature": temperature_value(temperature, task),
        "fitted_on": fitted_on,
    }
    if not bool((temperature == 1).all()):
        uncalibrated = view_probabilities(logits, torch.ones_like(temperature), task)
        metrics["calibration"] |= {
            "before": {"temperature": 1.0, **loss_and_error(uncalibrated, targets, multi_label)},
            "after": {
                "temperature": metrics["calibration"]["temperature"],
                **loss_and_error(probabilities, targets, multi_label),
            },
        }
    if not multi_label:
        metrics["risk_coverage"] = risk_coverage(*answers(probabilities, targets))
    return Scored(metrics, probabilities, targets, uncalibrated)


def loss_and_error(
    probabilities: torch.Tensor, targets: torch.Tensor, multi_label: bool
) -> dict[str, float]:
    """The loss and the expected calibration error of probabilities, as the report gives them."""
    if multi_label:
        losses = multilabel_losses(probabilities, targets) / probabilities.shape[1]
    else:
        losses = per_image_losses(probabilities, targets)
    return {
        "loss": float(losses.mean()),
        "expected_calibration_error": calibration_error(probabilities, targets, multi_label),
    }


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


def logits_over(
    model: torch.nn.Module, images: Dataset, batch_size: int, device: torch.device
) -> torch.Tensor:
    """The model's logits [N, 1, C] (one view) for a dataset of (uint8 image, label) pairs, in one
    process without a Trainer (for use inside a running fit, whatever its strategy)."""
    model = model.to(device).eval()
    batches = []
    with torch.inference_mode():
        for batch, _ in DataLoader(images, batch_size=batch_size):
            batches.append(model(batch.to(device)).float().cpu())
    return torch.cat(batches).unsqueeze(1)
