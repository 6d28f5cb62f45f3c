"""Predictions for image files: decoded in loader workers, classified in batches, written as
CSV rows, with Grad-CAM images on request."""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from src.data.dataset import UnlabelledImageFiles
from src.data.images import DEFAULT_MAX_PIXELS
from src.evaluation.attribution import gradcam_explainer
from src.evaluation.figures import gallery_figure, save_png
from src.evaluation.tta import VIEWS, View, averaged
from src.serving.classifiers import CheckpointClassifier, Classifier
from src.utils.console import progress
from src.utils.errors import UserError

#: The label of an image whose confidence is below the abstention threshold.
UNCERTAIN = "uncertain"


@dataclass
class Prediction:
    """A file's prediction: its class and that class's probability, or `uncertain` when that
    probability is below the abstention threshold; for a multi-label model, `label` is the set
    of classes at or above their thresholds, joined by `;` (empty when none is), and
    `probability` the highest of all; every class's probability either way."""

    path: Path
    label: str = ""
    probability: float = float("nan")
    probabilities: tuple[float, ...] = ()
    error: str = ""


def predict_files(
    files: Sequence[Path],
    classifier: Classifier,
    batch_size: int = 32,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    views: tuple[View, ...] = VIEWS["none"],
    num_workers: int = 0,
    on_batch: Callable[[list[Prediction], torch.Tensor], None] | None = None,
    min_confidence: float | None = None,
) -> list[Prediction]:
    """One prediction per file, in order; unusable files carry an error instead of a label.
    Files are decoded by `num_workers` loader processes; with several `views` (test-time
    augmentation) their probabilities are averaged. A single-label prediction whose top
    probability is below `min_confidence` is `uncertain`. `on_batch(predictions, images)` sees
    each batch's usable images."""
    results = [Prediction(path) for path in files]
    loader = DataLoader(
        UnlabelledImageFiles(files, classifier.image_size, classifier.crop_pct, max_pixels),
        batch_size=batch_size,
        num_workers=num_workers,
        collate_fn=list,
    )
    for batch in progress(loader, "Predicting"):
        good = [(results[index], image) for index, image, _ in batch if image is not None]
        for index, _, error in batch:
            results[index].error = error
        if not good:
            continue
        images = torch.stack([image for _, image in good])
        probabilities = averaged(classifier.probabilities, views, images)
        for (prediction, _), row in zip(good, probabilities, strict=True):
            index = int(row.argmax())
            prediction.probability = float(row[index])
            unsure = min_confidence is not None and prediction.probability < min_confidence
            prediction.label = UNCERTAIN if unsure else label_of(row, classifier)
            prediction.probabilities = tuple(float(value) for value in row)
        if on_batch is not None:
            on_batch([prediction for prediction, _ in good], images)
    return results


def label_of(probabilities: torch.Tensor, classifier: Classifier) -> str:
    """The class of the highest probability, or for a multi-label model every class at or
    above its threshold, joined by `;`."""
    names = classifier.class_names
    if classifier.thresholds is None:
        return names[int(probabilities.argmax())]
    chosen = probabilities >= torch.tensor(classifier.thresholds, dtype=probabilities.dtype)
    return ";".join(name for name, on in zip(names, chosen.tolist(), strict=True) if on)


def write_csv(path: Path, predictions: Sequence[Prediction], class_names: Sequence[str]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["path", "prediction", "probability", *[f"p_{c}" for c in class_names], "error"]
        )
        for p in predictions:
            probabilities = [f"{v:.6f}" for v in p.probabilities] or [""] * len(class_names)
            probability = "" if p.error else f"{p.probability:.6f}"
            writer.writerow([str(p.path), p.label, probability, *probabilities, p.error])


def gradcam_writer(
    classifier: Classifier, directory: Path
) -> Callable[[list[Prediction], torch.Tensor], None]:
    """Write `<directory>/<n>_<file name>.png`: each image with the Grad-CAM heat map of the
    class predicted for it (a checkpoint whose network has a Grad-CAM layer)."""
    if not isinstance(classifier, CheckpointClassifier):
        raise UserError("gradcam=true needs the network itself: use ckpt_path=, not model_file=")
    model = classifier.model
    explain, note = gradcam_explainer(model.net, model.normalise, model.description)
    if explain is None:  # refused before any image is read
        raise UserError(f"gradcam=true: Grad-CAM is {note}; run predict without it")
    directory.mkdir(parents=True, exist_ok=True)
    written = 0

    def write(predictions: list[Prediction], images: torch.Tensor) -> None:
        nonlocal written
        # the class of the highest probability (for several classes, the likeliest of them)
        classes = [
            max(range(len(p.probabilities)), key=p.probabilities.__getitem__) for p in predictions
        ]
        heat = explain(images, classes)
        for prediction, image, overlay in zip(predictions, images, heat, strict=True):
            title = f"{prediction.label} {prediction.probability:.2f}"
            figure = gallery_figure([image], [title], ["black"], [overlay])
            save_png(figure, directory / f"{written:05d}_{prediction.path.stem}.png")
            written += 1

    return write
