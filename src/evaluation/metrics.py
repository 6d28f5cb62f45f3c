"""The numbers of an evaluation, from predicted probabilities and true labels (torchmetrics)."""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torchmetrics.functional.classification import (
    binary_calibration_error,
    multiclass_auroc,
    multiclass_average_precision,
    multiclass_calibration_error,
    multiclass_confusion_matrix,
    multiclass_f1_score,
    multiclass_precision,
    multiclass_recall,
)

#: Confidence bins of the expected calibration error and the reliability diagram.
CALIBRATION_BINS = 15


def per_image_losses(probabilities: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of each image: minus the log of the probability of its true class."""
    picked = probabilities[torch.arange(len(targets)), targets].clamp(min=1e-12)
    return -picked.log()


def reliability_pairs(
    probabilities: torch.Tensor, targets: torch.Tensor, multi_label: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """(confidence, outcome): what calibration compares. One class per image: the top
    probability and whether its class is the true one; several: every class's probability of
    every image and whether the class applies."""
    if multi_label:
        return probabilities.flatten(), targets.flatten().bool()
    confidence, predicted = probabilities.max(dim=1)
    return confidence, predicted == targets


def calibration_error(
    probabilities: torch.Tensor, targets: torch.Tensor, multi_label: bool = False
) -> float:
    """Expected calibration error: the mean |accuracy - confidence| over `CALIBRATION_BINS`
    equal-width confidence bins, weighted by their share of the pairs (0: calibrated)."""
    confidence, outcome = reliability_pairs(probabilities, targets, multi_label)
    if len(confidence) == 0:
        return float("nan")
    return float(binary_calibration_error(confidence, outcome.long(), n_bins=CALIBRATION_BINS))


def summarise(
    probabilities: torch.Tensor, targets: torch.Tensor, class_names: list[str]
) -> dict[str, Any]:
    """Accuracy, loss, per-class precision / recall / F1 / support / accuracy, their macro and
    weighted averages, one-vs-rest ROC-AUC and average precision, expected calibration error and
    the confusion matrix (rows: true class). A class without images gets None, not a score."""
    num_classes = len(class_names)
    predictions = probabilities.argmax(dim=1)
    confusion = multiclass_confusion_matrix(predictions, targets, num_classes)
    support = confusion.sum(dim=1)
    present = support > 0
    args = (probabilities, targets, num_classes)
    with warnings.catch_warnings():  # a class without images: reported as None below
        warnings.simplefilter("ignore", UserWarning)
        scores = {
            "precision": multiclass_precision(*args, average=None),
            "recall": multiclass_recall(*args, average=None),
            "f1": multiclass_f1_score(*args, average=None),
            "roc_auc": multiclass_auroc(*args, average=None),
            "average_precision": multiclass_average_precision(*args, average=None),
        }
    per_class: dict[str, dict[str, Any]] = {}
    for index, name in enumerate(class_names):
        count = int(support[index])
        row: dict[str, Any] = {"support": count}
        for metric, values in scores.items():
            row[metric] = float(values[index]) if count else None
        row["accuracy"] = float(confusion[index, index]) / count if count else None
        per_class[name] = row
    weights = support[present].float() / support[present].sum()
    averages = {
        f"{kind}_{metric}": float(
            values[present].mean() if kind == "macro" else (values[present] * weights).sum()
        )
        for metric, values in scores.items()
        for kind in ("macro", "weighted")
    }
    return {
        "num_images": len(targets),
        "accuracy": (predictions == targets).float().mean().item(),
        "loss": per_image_losses(probabilities, targets).mean().item(),
        **averages,
        "expected_calibration_error": float(
            multiclass_calibration_error(*args, n_bins=CALIBRATION_BINS)
        ),
        "per_class": per_class,
        "per_class_accuracy": {name: row["accuracy"] for name, row in per_class.items()},
        "confusion_matrix": confusion.tolist(),
        "class_names": class_names,
    }
