"""Export a checkpoint to ONNX: `python -m src.export ckpt_path=.../best.ckpt [output=model.onnx]`.

Writes the model (uint8 images in, normalisation and temperature inside, logits out, any batch
size) and a JSON of what serving needs, only after onnxruntime has reproduced PyTorch's outputs
on real images; then MODEL_CARD.md beside them, from the checkpoint and its report.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from src.data.images import pixel_limit
from src.data.samples import find_image_files
from src.models.calibration import temperature_value
from src.models.checkpoint import load_checkpoint, training_state
from src.models.classifier import ImageClassifier
from src.models.tasks import MULTILABEL
from src.serving.abstention import validation_answers
from src.serving.classifiers import CheckpointClassifier
from src.serving.model_card import (
    CARD_FILE,
    METRICS,
    CardFacts,
    counts_from_data,
    counts_from_file_lists,
    model_card,
    run_dir_of,
    run_record,
)
from src.serving.onnx_export import export_verified, parity_images, serving_metadata
from src.sweeps.seeds import seed_intervals
from src.utils.console import quiet_known_messages
from src.utils.errors import UserError, exit_on_user_error, one_line
from src.utils.io import write_atomically

log = logging.getLogger(__name__)


def export(cfg: DictConfig) -> Path:
    """Export and verify, then write the model card; returns the path of the ONNX file."""
    quiet_known_messages()
    ckpt_path = Path(cfg.ckpt_path)
    model, trained_on = load_checkpoint(ckpt_path)
    image_size, crop_pct = int(model.hparams.image_size), float(model.hparams.crop_pct)
    images_root = cfg.get("images") or (trained_on or {}).get("root")
    if not images_root:
        raise UserError("give images=path/to/images for the check of the exported model")
    report_path = report_of(cfg, ckpt_path)
    files = find_image_files(Path(images_root).expanduser(), "images")
    max_pixels = pixel_limit(cfg.max_pixels, "max_pixels")
    images = parity_images(files, image_size, crop_pct, max_pixels, cfg.parity_images)
    settings = model.hparams.model
    metadata = serving_metadata(
        list(model.class_names),
        image_size,
        crop_pct,
        list(settings["mean"]),
        list(settings["std"]),
        thresholds=model.thresholds.tolist() if model.task == MULTILABEL else None,
        temperature=temperature_value(model.temperature, model.task),
    )
    if model.task != MULTILABEL:
        answers = exported_validation(CheckpointClassifier.of(model, trained_on), max_pixels)
        if answers is not None:
            metadata["validation"] = answers
    output = Path(cfg.output) if cfg.get("output") else Path(cfg.paths.output_dir) / "model.onnx"
    difference = export_verified(model, metadata, images, output)
    card = write_card(ckpt_path, model, trained_on, output, report_path)
    log.info(
        "Exported %s and %s: onnxruntime matches PyTorch on %d images of %s "
        "(largest output difference %.2g); model card %s",
        output,
        output.with_suffix(".json").name,
        len(images),
        images_root,
        difference,
        card,
    )
    return output


def exported_validation(classifier: CheckpointClassifier, max_pixels: int) -> dict | None:
    """The validation split's answers for predict's target_precision, or None (with a warning)
    when the split cannot be read here."""
    try:
        return validation_answers(classifier, max_pixels=max_pixels)
    except UserError as error:
        log.warning(
            "model.json gets no validation answers, so predict model_file=... cannot use "
            "target_precision (min_confidence works): %s",
            one_line(error),
        )
        return None


def report_of(cfg: DictConfig, ckpt_path: Path) -> Path | None:
    """The evaluation report the card's metrics come from: `report=`, or the best checkpoint's
    report in its run dir when that is the report of this checkpoint."""
    if cfg.get("report"):
        path = Path(cfg.report)
        if not path.is_file():
            raise UserError(
                f"report={path} does not exist; pass the metrics.json of an evaluation of this "
                "checkpoint (python -m src.evaluate writes one)"
            )
        return path
    run_dir = run_dir_of(ckpt_path)
    path = None if run_dir is None else run_dir / "evaluation" / "metrics.json"
    if path is None or not path.is_file():
        return None
    of = json.loads(path.read_text(encoding="utf-8")).get("ckpt_path")
    if not of or Path(of).resolve() != ckpt_path.resolve():
        log.warning(
            "%s is the report of %s, not of %s: the model card leaves its metrics out "
            "(report=<metrics.json of an evaluation of this checkpoint> adds them)",
            path,
            of,
            ckpt_path,
        )
        return None
    return path


def write_card(
    ckpt_path: Path,
    model: ImageClassifier,
    trained_on: dict[str, Any] | None,
    onnx_file: Path,
    report_path: Path | None,
) -> Path:
    """MODEL_CARD.md beside `onnx_file`, from the checkpoint, its run dir, model.json and the
    report."""
    run_dir = run_dir_of(ckpt_path)
    class_names = list(model.class_names)
    counts = counts_from_file_lists(run_dir, class_names) or counts_from_data(
        trained_on, class_names, model.task == MULTILABEL
    )
    intervals, seed_runs = ({}, [])
    if run_dir is not None:
        intervals, seed_runs = seed_intervals(run_dir, [key for key, _ in METRICS[model.task]])
    facts = CardFacts(
        ckpt_path=ckpt_path,
        onnx_file=onnx_file,
        model=model,
        trained_on=trained_on,
        metadata=json.loads(onnx_file.with_suffix(".json").read_text(encoding="utf-8")),
        training=training_state(ckpt_path),
        run=run_record(run_dir),
        counts=counts,
        report=None if report_path is None else json.loads(report_path.read_text("utf-8")),
        report_path=report_path,
        intervals=intervals,
        seed_runs=seed_runs,
    )
    return write_atomically(onnx_file.parent / CARD_FILE, model_card(facts))


@hydra.main(version_base="1.3", config_path="../conf", config_name="export")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    export(cfg)


if __name__ == "__main__":
    main()
