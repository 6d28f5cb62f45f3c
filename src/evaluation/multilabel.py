"""The numbers, figures and report of a multi-label evaluation: per-class average precision,
precision, recall, F1 and counts at the model's decision thresholds, precision-recall curves."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from torch.nn import functional
from torchmetrics.functional.classification import (
    multilabel_average_precision,
    multilabel_precision_recall_curve,
)

from src.evaluation.metrics import calibration_error


def per_image_losses(probabilities: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of each image, summed over the classes."""
    probabilities = probabilities.clamp(1e-7, 1 - 1e-7)
    losses = functional.binary_cross_entropy(probabilities, targets.float(), reduction="none")
    return losses.sum(dim=1)


def worst_label(probabilities: torch.Tensor, targets: torch.Tensor) -> int:
    """The class an image's loss comes from most: the one its probability misses by most."""
    return int((probabilities - targets.float()).abs().argmax())


def _ratio(numerator: torch.Tensor, denominator: torch.Tensor) -> list[float | None]:
    return [
        None if int(d) == 0 else float(n) / float(d)
        for n, d in zip(numerator, denominator, strict=True)
    ]


def summarise_multilabel(
    probabilities: torch.Tensor,
    targets: torch.Tensor,
    class_names: list[str],
    thresholds: torch.Tensor,
) -> dict[str, Any]:
    """Mean average precision (macro, over the classes that have images) and per class: average
    precision, and at `thresholds` precision, recall, F1, support and the counts of true
    positives, false positives and false negatives; F1 macro, micro and per sample, the share of
    images whose predicted set is exactly right, the loss (binary cross-entropy) and the expected
    calibration error over every (image, class) pair. A class
    without images gets None where a score needs them."""
    truth = targets.bool()
    predicted = probabilities >= thresholds.to(probabilities.dtype)
    tp = (predicted & truth).sum(dim=0)
    fp = (predicted & ~truth).sum(dim=0)
    fn = (~predicted & truth).sum(dim=0)
    support = truth.sum(dim=0)
    with warnings.catch_warnings():  # a class without images: reported as None
        warnings.simplefilter("ignore", UserWarning)
        average_precision = multilabel_average_precision(
            probabilities, targets.long(), num_labels=len(class_names), average=None
        )
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, support)
    f1 = _ratio(2 * tp, 2 * tp + fp + fn)
    per_class = {}
    for index, name in enumerate(class_names):
        present = int(support[index]) > 0
        per_class[name] = {
            "support": int(support[index]),
            "average_precision": float(average_precision[index]) if present else None,
            "precision": precision[index],
            "recall": recall[index],
            "f1": f1[index] if present else None,
            "true_positives": int(tp[index]),
            "false_positives": int(fp[index]),
            "false_negatives": int(fn[index]),
            "threshold": float(thresholds[index]),
        }
    present = support > 0
    overlap = (predicted & truth).sum(dim=1).float()
    sizes = predicted.sum(dim=1).float() + truth.sum(dim=1).float()
    per_sample_f1 = torch.where(sizes > 0, 2 * overlap / sizes.clamp(min=1), torch.ones_like(sizes))
    totals = 2 * tp.sum() + fp.sum() + fn.sum()
    return {
        "task": "multilabel",
        "num_images": len(targets),
        "mean_average_precision": float(average_precision[present].mean()),
        "exact_match": float((predicted == truth).all(dim=1).float().mean()),
        "f1_macro": float(np.mean([f1[i] for i in range(len(class_names)) if present[i]])),
        "f1_micro": float(2 * tp.sum() / totals) if int(totals) else 0.0,
        "f1_samples": float(per_sample_f1.mean()),
        "loss": float(per_image_losses(probabilities, targets).mean() / len(class_names)),
        "expected_calibration_error": calibration_error(probabilities, targets, multi_label=True),
        "per_class": per_class,
        "class_names": class_names,
        "thresholds": [float(value) for value in thresholds],
    }


def pr_curves_figure(
    probabilities: torch.Tensor, targets: torch.Tensor, class_names: Sequence[str]
) -> Figure:
    """Each class's precision-recall curve, its threshold's point marked."""
    precision, recall, _ = multilabel_precision_recall_curve(
        probabilities, targets.long(), num_labels=len(class_names)
    )
    figure = Figure(figsize=(6, 5), layout="constrained")
    ax = figure.subplots()
    for index, name in enumerate(class_names):
        if bool(targets[:, index].any()):
            ax.plot(recall[index].numpy(), precision[index].numpy(), label=name)
    ax.set(xlabel="recall", ylabel="precision", title="precision-recall per class")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    if len(class_names) <= 20:
        ax.legend(fontsize=8)
    return figure


def counts_figure(metrics: dict[str, Any]) -> Figure:
    """True positives, false positives and false negatives of each class, side by side."""
    names = metrics["class_names"]
    rows = [metrics["per_class"][name] for name in names]
    figure = Figure(figsize=(max(5.0, 0.6 * len(names) + 2), 4.5), layout="constrained")
    ax = figure.subplots()
    positions = np.arange(len(names))
    for offset, (key, label) in enumerate(
        (
            ("true_positives", "true +"),
            ("false_positives", "false +"),
            ("false_negatives", "false -"),
        )
    ):
        ax.bar(positions + (offset - 1) * 0.27, [row[key] for row in rows], 0.27, label=label)
    ax.set_xticks(positions, names, rotation=90 if len(names) > 8 else 0)
    ax.set(ylabel="images", title="per class, at its threshold")
    ax.legend(fontsize=8)
    return figure


def markdown_lines(metrics: dict[str, Any]) -> list[str]:
    """report.md's headline and per-class table of a multi-label evaluation."""
    number = lambda value: "-" if value is None else f"{value:.4f}"  # noqa: E731
    headline = (
        ("mean_average_precision", "mean average precision (macro)"),
        ("exact_match", "exact match (the whole set of labels right)"),
        ("f1_macro", "F1, macro average"),
        ("f1_micro", "F1, micro average"),
        ("f1_samples", "F1, per image"),
        ("loss", "loss (binary cross-entropy)"),
        ("expected_calibration_error", "expected calibration error (every image and class)"),
    )
    lines = [
        "| metric | value |",
        "|---|---|",
        *(f"| {label} | {number(metrics.get(key))} |" for key, label in headline),
        "",
        "| class | support | AP | precision | recall | F1 | true + | false + | false - | "
        "threshold |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in metrics["per_class"].items():
        scores = " | ".join(
            number(row[key]) for key in ("average_precision", "precision", "recall", "f1")
        )
        counts = f"{row['true_positives']} | {row['false_positives']} | {row['false_negatives']}"
        lines.append(
            f"| {name} | {row['support']} | {scores} | {counts} | {row['threshold']:.3f} |"
        )
    return lines
