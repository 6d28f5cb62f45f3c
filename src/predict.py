"""Classify images with a checkpoint: `python -m src.predict ckpt_path=... input=folder_or_image`.

Writes `predictions.csv` into the run dir and prints one row per file; files that cannot be
decoded get a row with the reason, and the exit status is 1 when any file failed.
"""

from __future__ import annotations

import csv
import logging
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig

from src.data.images import DEFAULT_MAX_PIXELS, UnusableImageError, read_rgb_tensor
from src.data.samples import has_image_suffix
from src.data.transforms import eval_pipeline
from src.models.checkpoint import load_classifier
from src.models.classifier import ImageClassifier
from src.utils.errors import UserError, exit_on_user_error

log = logging.getLogger(__name__)


@dataclass
class Prediction:
    path: Path
    label: str = ""
    probability: float = float("nan")
    probabilities: tuple[float, ...] = ()
    error: str = ""


def find_inputs(input_path: Path) -> list[Path]:
    """The image file itself, or every file with an image suffix under the folder."""
    if input_path.is_file():
        return [input_path]
    if input_path.is_dir():
        files = sorted(p for p in input_path.rglob("*") if p.is_file() and has_image_suffix(p))
        if not files:
            raise UserError(f"input={input_path} holds no image files")
        return files
    raise UserError(f"input={input_path} does not exist; pass an image file or a folder of images")


def batched(items: Sequence[Path], size: int) -> Iterator[Sequence[Path]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def predict_files(
    files: Sequence[Path],
    model: ImageClassifier,
    batch_size: int = 32,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> list[Prediction]:
    """One prediction per file, in order; unusable files carry an error instead of a label."""
    device = model.device
    image_size = model.hparams.image_size
    transform, draft_size = eval_pipeline(image_size)
    results: list[Prediction] = []
    for chunk in batched(files, batch_size):
        tensors, good = [], []
        for path in chunk:
            prediction = Prediction(path)
            results.append(prediction)
            try:
                image = read_rgb_tensor(path, max_pixels, draft_size)
            except UnusableImageError as error:
                prediction.error = str(error)
                continue
            tensors.append(transform(image))
            good.append(prediction)
        if not tensors:
            continue
        with torch.inference_mode():
            probabilities = model(torch.stack(tensors).to(device)).softmax(dim=1).cpu()
        for prediction, row in zip(good, probabilities, strict=True):
            index = int(row.argmax())
            prediction.label = model.class_names[index]
            prediction.probability = float(row[index])
            prediction.probabilities = tuple(float(value) for value in row)
    return results


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


@hydra.main(version_base="1.3", config_path="../conf", config_name="predict")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    files = find_inputs(Path(cfg.input))
    device = cfg.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    model = load_classifier(cfg.ckpt_path, map_location=device)
    predictions = predict_files(files, model, cfg.batch_size, cfg.max_pixels)
    output = Path(cfg.paths.output_dir) / "predictions.csv"
    write_csv(output, predictions, model.class_names)
    for p in predictions:
        print(f"{p.path}\t{p.label or 'ERROR'}\t{p.error or f'{p.probability:.4f}'}")
    failed = sum(1 for p in predictions if p.error)
    log.info("%d predictions, %d failed; written to %s", len(predictions), failed, output)
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
