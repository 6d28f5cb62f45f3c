"""The figures of an evaluation, drawn with matplotlib's object API (no pyplot state) to PNG."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torchmetrics.functional.classification import (
    multiclass_precision_recall_curve,
    multiclass_roc,
)

from src.evaluation.metrics import CALIBRATION_BINS

# Above these class counts, per-cell numbers and then tick labels become unreadable.
MAX_CLASSES_WITH_NUMBERS = 30
MAX_CLASSES_WITH_LABELS = 60


def save_png(figure: Figure, path: Path) -> Path:
    FigureCanvasAgg(figure).print_png(str(path))
    return path


def draw_confusion(ax: Axes, matrix: np.ndarray, class_names: Sequence[str], title: str) -> None:
    """Labelled heatmap of `matrix` (rows: true class) with its numbers, for up to 30 classes."""
    n = matrix.shape[0]
    normalised = matrix.dtype.kind == "f"
    image = ax.imshow(matrix, cmap="Blues", interpolation="nearest", vmin=0)
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fontsize = max(4.0, min(10.0, 120.0 / n))
    if n <= MAX_CLASSES_WITH_LABELS:
        ax.set_xticks(range(n), class_names, rotation=90, fontsize=fontsize)
        ax.set_yticks(range(n), class_names, fontsize=fontsize)
    else:
        ax.set_xticks([])
        ax.set_yticks([])
    if n > MAX_CLASSES_WITH_NUMBERS:
        return
    threshold = matrix.max() / 2.0
    for true in range(n):
        for pred in range(n):
            value = matrix[true, pred]
            ax.text(
                pred,
                true,
                f"{value:.2f}" if normalised else str(int(value)),
                ha="center",
                va="center",
                fontsize=fontsize,
                color="white" if value > threshold else "black",
            )


def confusion_figure(matrix: np.ndarray, class_names: Sequence[str]) -> Figure:
    """Counts, and the same rows normalised (each row: where that class's images went)."""
    side = min(max(4.0, 0.45 * len(class_names) + 2.0), 16.0)
    figure = Figure(figsize=(2 * side, side), layout="constrained")
    counts_ax, rows_ax = figure.subplots(1, 2)
    draw_confusion(counts_ax, matrix, class_names, "confusion matrix (counts)")
    rows = matrix / np.clip(matrix.sum(axis=1, keepdims=True), 1, None)
    draw_confusion(rows_ax, rows.astype(float), class_names, "normalised by true class")
    return figure


def curves_figure(
    probabilities: torch.Tensor, targets: torch.Tensor, class_names: Sequence[str]
) -> Figure:
    """One-vs-rest ROC and precision-recall curves of every class that has images."""
    num_classes = len(class_names)
    fpr, tpr, _ = multiclass_roc(probabilities, targets, num_classes)
    precision, recall, _ = multiclass_precision_recall_curve(probabilities, targets, num_classes)
    figure = Figure(figsize=(11, 5), layout="constrained")
    roc_ax, pr_ax = figure.subplots(1, 2)
    for index, name in enumerate(class_names):
        if not bool((targets == index).any()):
            continue
        roc_ax.plot(fpr[index].numpy(), tpr[index].numpy(), label=name)
        pr_ax.plot(recall[index].numpy(), precision[index].numpy(), label=name)
    roc_ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    roc_ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (one vs rest)")
    pr_ax.set(xlabel="recall", ylabel="precision", title="precision-recall (one vs rest)")
    for ax in (roc_ax, pr_ax):
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        if num_classes <= 20:
            ax.legend(fontsize=8)
    return figure


def draw_reliability(ax: Axes, confidence: torch.Tensor, outcome: torch.Tensor, title: str) -> None:
    """Observed frequency against confidence in equal-width bins, each bar's count above it: on
    the diagonal when calibrated."""
    outcome = outcome.float()
    edges = torch.linspace(0, 1, CALIBRATION_BINS + 1)
    centers, observed, counts = [], [], []
    for low, high in itertools.pairwise(edges):
        chosen = (confidence > low) & (confidence <= high)
        if chosen.any():
            centers.append(float((low + high) / 2))
            observed.append(float(outcome[chosen].mean()))
            counts.append(int(chosen.sum()))
    ax.bar(centers, observed, width=1 / CALIBRATION_BINS, edgecolor="black", label="observed")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="calibrated")
    for x, y, n in zip(centers, observed, counts, strict=True):
        ax.text(x, y + 0.01, str(n), ha="center", fontsize=7)
    ax.set(title=title)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.08)
    ax.legend(loc="upper left", fontsize=8)


def reliability_figure(
    panels: Sequence[tuple[str, torch.Tensor, torch.Tensor]], multi_label: bool = False
) -> Figure:
    """One reliability diagram per (title, confidence, outcome) panel, side by side (before and
    after calibration). One class per image: accuracy against the top probability; several:
    how often a class applies against its probability."""
    figure = Figure(figsize=(5.5 * len(panels), 5), layout="constrained")
    axes = figure.subplots(1, len(panels), squeeze=False).flat
    for ax, (title, confidence, outcome) in zip(axes, panels, strict=True):
        draw_reliability(ax, confidence, outcome, title)
        if multi_label:
            ax.set(xlabel="probability of a class", ylabel="share of images with the class")
        else:
            ax.set(xlabel="confidence (top probability)", ylabel="accuracy")
    return figure


def risk_coverage_figure(curves: Sequence[tuple[str, dict[str, torch.Tensor]]]) -> Figure:
    """Accuracy of the answered images against the share answered, answering the most confident
    first, for each (label, `selective_curve`)."""
    figure = Figure(figsize=(5.5, 5), layout="constrained")
    ax = figure.subplots()
    for label, curve in curves:
        ax.step(curve["coverage"].numpy(), curve["precision"].numpy(), where="post", label=label)
    ax.set(
        xlabel="coverage (share of the images answered)",
        ylabel="accuracy of the answered images",
        title="risk-coverage",
    )
    ax.set_xlim(0, 1)
    ax.set_ylim(None, 1.01)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    return figure


def gallery_figure(
    images: Sequence[torch.Tensor],
    titles: Sequence[str],
    colors: Sequence[str],
    overlays: Sequence[np.ndarray | None] | None = None,
) -> Figure:
    """uint8 [3, H, W] images in a near-square grid, titled; `overlays` (heat maps in [0, 1])
    are drawn over their image."""
    count = len(images)
    cols = max(1, int(np.ceil(np.sqrt(count))))
    rows = max(1, int(np.ceil(count / cols)))
    figure = Figure(figsize=(2.6 * cols, 2.9 * rows), layout="constrained")
    for index, ax in enumerate(figure.subplots(rows, cols, squeeze=False).flat):
        ax.set_axis_off()
        if index >= count:
            continue
        ax.imshow(images[index].permute(1, 2, 0).numpy())
        if overlays is not None and overlays[index] is not None:
            ax.imshow(overlays[index], cmap="jet", alpha=0.45, vmin=0, vmax=1)
        ax.set_title(titles[index], color=colors[index], fontsize=7)
    return figure


def write_figures(
    directory: Path,
    probabilities: torch.Tensor,
    targets: torch.Tensor,
    class_names: Sequence[str],
    matrix: np.ndarray,
) -> dict[str, Path]:
    """confusion_matrix.png and roc_pr_curves.png in `directory`."""
    drawings: dict[str, Callable[[], Figure]] = {
        "confusion_matrix": lambda: confusion_figure(matrix, class_names),
        "roc_pr_curves": lambda: curves_figure(probabilities, targets, class_names),
    }
    return {name: save_png(draw(), directory / f"{name}.png") for name, draw in drawings.items()}
