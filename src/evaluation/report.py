"""The report of an evaluation: metrics.json, figures and report.md in the run dir."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from src.data.datamodule import ImageDataModule
from src.evaluation import multilabel
from src.evaluation.attribution import Explainer
from src.evaluation.figures import (
    gallery_figure,
    reliability_figure,
    risk_coverage_figure,
    save_png,
    write_figures,
)
from src.evaluation.metrics import per_image_losses, reliability_pairs
from src.evaluation.scoring import Scored
from src.evaluation.selective import answers, selective_curve
from src.utils.io import write_atomically

#: Images in the top-losses gallery.
TOP_LOSSES = 16

#: Overall numbers in report.md: (metrics.json key, label).
HEADLINE = (
    ("accuracy", "accuracy"),
    ("loss", "loss (cross-entropy)"),
    ("macro_f1", "F1, macro average"),
    ("weighted_f1", "F1, weighted by support"),
    ("macro_roc_auc", "ROC-AUC, one vs rest, macro"),
    ("macro_average_precision", "average precision, macro"),
    ("expected_calibration_error", "expected calibration error"),
)


def top_losses(losses: torch.Tensor, count: int = TOP_LOSSES) -> list[int]:
    """Indices of the highest losses: the most confidently wrong images come first."""
    return torch.argsort(losses, descending=True)[:count].tolist()


def write_report(
    directory: Path,
    metrics: dict[str, Any],
    probabilities: torch.Tensor,
    targets: torch.Tensor,
    image_of: Callable[[int], torch.Tensor],
    names: Sequence[str],
    explain: Explainer | None = None,
    uncalibrated: torch.Tensor | None = None,
) -> dict[str, Path]:
    """Write metrics.json, the figures, top_losses.png and report.md; returns the files.

    `image_of(i)` is the i-th scored image as the model saw it (uint8 [3, H, W]) and `names[i]`
    its file name; `explain(images, classes)` gives heat maps drawn over the top-losses gallery;
    `uncalibrated` (the probabilities at temperature 1, when the model's differs) adds the
    before side of the calibration figures.
    """
    directory.mkdir(parents=True, exist_ok=True)
    multi_label = metrics.get("task") == "multilabel"
    if multi_label:
        files = {
            "pr_curves": save_png(
                multilabel.pr_curves_figure(probabilities, targets, metrics["class_names"]),
                directory / "pr_curves.png",
            ),
            "counts": save_png(multilabel.counts_figure(metrics), directory / "counts.png"),
        }
        losses = multilabel.per_image_losses(probabilities, targets)
    else:
        matrix = np.array(metrics["confusion_matrix"])
        files = write_figures(directory, probabilities, targets, metrics["class_names"], matrix)
        losses = per_image_losses(probabilities, targets)
    files |= calibration_figures(directory, metrics, probabilities, targets, uncalibrated)
    worst = top_losses(losses)
    describe = _multilabel_loss_row if multi_label else _loss_row
    metrics["top_losses"] = [
        {
            "file": str(names[i]),
            **describe(metrics, probabilities[i], targets[i]),
            "loss": float(losses[i]),
        }
        for i in worst
    ]
    titles = [
        f"{row['predicted']} / {row['true']}\nloss {row['loss']:.2f}, p {row['probability']:.2f}"
        for row in metrics["top_losses"]
    ]
    colors = ["red" if r["predicted"] != r["true"] else "green" for r in metrics["top_losses"]]
    images = [image_of(i) for i in worst]
    explained = [metrics["class_names"].index(row["explained"]) for row in metrics["top_losses"]]
    overlays = explain(torch.stack(images), explained) if explain and images else None
    gallery = gallery_figure(images, titles, colors, overlays)
    files["top_losses"] = save_png(gallery, directory / "top_losses.png")
    files["metrics"] = write_atomically(directory / "metrics.json", json.dumps(metrics, indent=2))
    files["report"] = write_atomically(directory / "report.md", markdown(metrics, files))
    return files


def _loss_row(
    metrics: dict[str, Any], probabilities: torch.Tensor, target: torch.Tensor
) -> dict[str, Any]:
    """A top loss of a single-label evaluation: true and predicted class, the latter's
    probability; Grad-CAM shows where the predicted class was seen."""
    names = metrics["class_names"]
    predicted = names[int(probabilities.argmax())]
    return {
        "true": names[int(target)],
        "predicted": predicted,
        "probability": float(probabilities.max()),
        "explained": predicted,
    }


def _multilabel_loss_row(
    metrics: dict[str, Any], probabilities: torch.Tensor, target: torch.Tensor
) -> dict[str, Any]:
    """A top loss of a multi-label evaluation: the true and predicted sets; the class its loss
    comes from most, its probability, and Grad-CAM of that class."""
    names = metrics["class_names"]
    thresholds = torch.tensor(metrics["thresholds"])
    chosen = lambda mask: ", ".join(n for n, on in zip(names, mask, strict=True) if on) or "none"  # noqa: E731
    worst = multilabel.worst_label(probabilities, target)
    return {
        "true": chosen(target.bool().tolist()),
        "predicted": chosen((probabilities >= thresholds).tolist()),
        "probability": float(probabilities[worst]),
        "explained": names[worst],
    }


def calibration_figures(
    directory: Path,
    metrics: dict[str, Any],
    probabilities: torch.Tensor,
    targets: torch.Tensor,
    uncalibrated: torch.Tensor | None,
) -> dict[str, Path]:
    """reliability.png (before and after calibration, side by side, when the model's temperature
    is not 1) and for one class per image risk_coverage.png."""
    multi_label = metrics.get("task") == "multilabel"
    temperature = temperature_text(metrics["calibration"]["temperature"])
    panels = [("reliability", *reliability_pairs(probabilities, targets, multi_label))]
    if uncalibrated is not None:
        panels = [
            ("before: temperature 1", *reliability_pairs(uncalibrated, targets, multi_label)),
            (f"after: temperature {temperature}", *panels[0][1:]),
        ]
    figure = reliability_figure(panels, multi_label)
    files = {"reliability": save_png(figure, directory / "reliability.png")}
    if not multi_label:
        # One temperature keeps every image's rank: the curve is the same before and after.
        curves = [(f"temperature {temperature}", selective_curve(*answers(probabilities, targets)))]
        figure = risk_coverage_figure(curves)
        files["risk_coverage"] = save_png(figure, directory / "risk_coverage.png")
    return files


def temperature_text(temperature: float | list[float]) -> str:
    """One temperature, or the range of a multi-label model's per-class ones."""
    if isinstance(temperature, list):
        return f"per class, {min(temperature):.3g} to {max(temperature):.3g}"
    return f"{temperature:.3g}"


def write_validation_report(
    directory: Path,
    datamodule: ImageDataModule,
    scored: Scored,
    explain: Explainer | None = None,
) -> dict[str, Path]:
    """`write_report` for the data module's validation images, shown as the model saw them, and
    predictions.csv: each image's given classes and every class's (calibrated) probability."""
    images = datamodule.eval_dataset(datamodule.val_samples)
    files = write_report(
        directory,
        scored.metrics,
        scored.probabilities,
        scored.targets,
        image_of=lambda index: images[index][0],
        names=[sample.path.name for sample in datamodule.val_samples],
        explain=explain,
        uncalibrated=scored.uncalibrated,
    )
    files["predictions"] = write_predictions(
        directory / PREDICTIONS_CSV,
        datamodule,
        scored.metrics["class_names"],
        scored.probabilities,
    )
    return files


#: Each scored image's given classes and probabilities (the out-of-fold predictions of k-fold
#: runs are these files, gathered by the sweep report).
PREDICTIONS_CSV = "predictions.csv"


def write_predictions(
    path: Path, datamodule: ImageDataModule, class_names: list[str], probabilities: torch.Tensor
) -> Path:
    """One row per validation image: its path, its given classes (joined by `;`, by name, in the
    data's classes) and the model's probability of each of the model's classes."""
    data_classes = datamodule.class_names
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "labels", *(f"p_{name}" for name in class_names)])
        for sample, row in zip(datamodule.val_samples, probabilities, strict=True):
            given = ";".join(data_classes[label] for label in sample.labels)
            writer.writerow([str(sample.path), given, *(f"{float(p):.6f}" for p in row)])
    return path


def tta_lines(tta: dict[str, Any] | None) -> list[str]:
    """Accuracy and loss without and with test-time augmentation, on the same images."""
    if not tta:
        return []
    views = tta["views"]
    return [
        f"| accuracy without / with tta={views} | {tta['accuracy_without']:.4f} / "
        f"{tta['accuracy_with']:.4f} |",
        f"| loss without / with tta={views} | {tta['loss_without']:.4f} / {tta['loss_with']:.4f} |",
    ]


def single_label_lines(metrics: dict[str, Any]) -> list[str]:
    """report.md's headline and per-class table of a single-label evaluation."""
    number = lambda value: "-" if value is None else f"{value:.4f}"  # noqa: E731
    lines = [
        "| metric | value |",
        "|---|---|",
        *(f"| {label} | {number(metrics.get(key))} |" for key, label in HEADLINE),
        *tta_lines(metrics.get("tta")),
        "",
        "| class | support | precision | recall | F1 | ROC-AUC | average precision |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, row in metrics["per_class"].items():
        cells = [row["precision"], row["recall"], row["f1"], row["roc_auc"]]
        cells.append(row["average_precision"])
        lines.append(f"| {name} | {row['support']} | " + " | ".join(map(number, cells)) + " |")
    return lines


def calibration_lines(metrics: dict[str, Any]) -> list[str]:
    """The temperature, where it was fitted, and the loss and calibration error before and after."""
    calibration = metrics.get("calibration")
    if not calibration:
        return []
    temperature = temperature_text(calibration["temperature"])
    if "before" not in calibration:
        return [
            "## Calibration",
            "",
            f"Temperature {temperature}: the probabilities are not calibrated "
            "(python -m src.evaluate calibrate=true fits a temperature on the validation split).",
            "",
        ]
    where = calibration.get("fitted_on") or "the checkpoint's"
    rows = [
        f"| {side} | {temperature_text(calibration[side]['temperature'])} | "
        f"{calibration[side]['expected_calibration_error']:.4f} | {calibration[side]['loss']:.4f} |"
        for side in ("before", "after")
    ]
    return [
        "## Calibration",
        "",
        f"Temperature {temperature} ({where}); every other number of this report is at it.",
        "",
        "| | temperature | expected calibration error | loss |",
        "|---|---|---|---|",
        *rows,
        "",
    ]


def risk_coverage_lines(metrics: dict[str, Any]) -> list[str]:
    """Accuracy of the answered images when only the most confident share is answered."""
    rows = {row["coverage"]: row for row in metrics.get("risk_coverage") or []}
    shown = [rows[coverage] for coverage in (1.0, 0.9, 0.8, 0.5) if coverage in rows]
    if not shown:
        return []
    return [
        "## Risk and coverage",
        "",
        "Answering only the most confident images (predict's min_confidence):",
        "",
        "| answered | accuracy of the answered | confidence at least |",
        "|---|---|---|",
        *(
            f"| {row['coverage']:.0%} | {row['accuracy']:.4f} | {row['threshold']:.4f} |"
            for row in shown
        ),
        "",
    ]


def markdown(metrics: dict[str, Any], files: dict[str, Path]) -> str:
    """report.md: the headline numbers, the per-class table, the top losses and the figures."""
    multi_label = metrics.get("task") == "multilabel"
    lines = [
        "# Evaluation",
        "",
        f"Checkpoint `{metrics.get('ckpt_path', '')}`, data `{metrics.get('data_root', '')}`: "
        f"{metrics['num_images']} images scored, {metrics.get('num_excluded', 0)} files "
        "excluded (listed in excluded_files.txt).",
        "",
        *(multilabel.markdown_lines(metrics) if multi_label else single_label_lines(metrics)),
        "",
        *calibration_lines(metrics),
        *risk_coverage_lines(metrics),
    ]
    lines += ["", "Most confidently wrong first (predicted / true):", ""]
    if metrics.get("gradcam"):
        lines[-1:-1] = [f"Grad-CAM over the top losses: {metrics['gradcam']}.", ""]
    lines += [
        f"- `{row['file']}`: {row['predicted']} / {row['true']}, p {row['probability']:.3f}, "
        f"loss {row['loss']:.3f}"
        for row in metrics["top_losses"]
    ]
    lines.append("")
    lines += [f"![{name}]({path.name})" for name, path in files.items() if path.suffix == ".png"]
    return "\n".join(lines) + "\n"
