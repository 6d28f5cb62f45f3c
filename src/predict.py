"""Classify images: `python -m src.predict ckpt_path=... input=folder_or_image`, or with an
exported model, `python -m src.predict model_file=model.onnx input=...` (onnxruntime).

Writes `predictions.csv` into the run dir and prints one row per file; files that cannot be
decoded get a row with the reason, and the exit status is 1 when any file failed. With
`min_confidence` or `target_precision`, images below the confidence are `uncertain` and
`abstention.json` says where the threshold came from and how many were answered.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from src.data.images import pixel_limit
from src.data.samples import scan_inputs
from src.evaluation.selective import Abstention
from src.evaluation.tta import tta_views
from src.serving.abstention import abstention_threshold
from src.serving.classifiers import CheckpointClassifier, Classifier, OnnxClassifier
from src.serving.prediction import (
    UNCERTAIN,
    Prediction,
    gradcam_writer,
    predict_files,
    write_csv,
)
from src.utils.devices import default_num_workers
from src.utils.errors import UserError, exit_on_user_error
from src.utils.io import write_atomically

log = logging.getLogger(__name__)


def load_model(cfg: DictConfig) -> Classifier:
    """The checkpoint (`ckpt_path`) or the exported ONNX file (`model_file`): one of them."""
    if bool(cfg.get("ckpt_path")) == bool(cfg.get("model_file")):
        raise UserError(
            "give either ckpt_path=<run dir>/checkpoints/best.ckpt or model_file=<model.onnx>"
        )
    if cfg.get("model_file"):
        return OnnxClassifier(cfg.model_file)
    return CheckpointClassifier(cfg.ckpt_path, cfg.device)


@hydra.main(version_base="1.3", config_path="../conf", config_name="predict")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    files, skipped = scan_inputs(Path(cfg.input), "input")
    classifier = load_model(cfg)
    views = tta_views(str(cfg.get("tta", "none")))
    workers = cfg.num_workers
    if workers is None:
        workers = default_num_workers(model_on_cpu=classifier.device.type == "cpu")
    run_dir = Path(cfg.paths.output_dir)
    on_batch = gradcam_writer(classifier, run_dir / "gradcam") if cfg.get("gradcam") else None
    max_pixels = pixel_limit(cfg.max_pixels, "max_pixels")
    reading = {"batch_size": cfg.batch_size, "max_pixels": max_pixels, "num_workers": workers}
    abstention = abstention_threshold(
        classifier, cfg.get("min_confidence"), cfg.get("target_precision"), views, **reading
    )
    threshold = abstention.threshold if isinstance(abstention, Abstention) else abstention
    predictions = predict_files(
        files, classifier, cfg.batch_size, max_pixels, views, workers, on_batch, threshold
    )
    predictions += [Prediction(path, error=reason) for path, reason in skipped.items()]
    output = run_dir / "predictions.csv"
    write_csv(output, predictions, classifier.class_names)
    for p in predictions:
        # a multi-label prediction with no class at or above its threshold has no label
        label = "SKIPPED" if p.path in skipped else "ERROR" if p.error else p.label or "(none)"
        print(f"{p.path}\t{label}\t{p.error or f'{p.probability:.4f}'}")
    if threshold is not None:
        write_abstention(run_dir, cfg, abstention, predictions)
    failed = sum(1 for p in predictions if p.error) - len(skipped)
    log.info(
        "%d predicted, %d failed, %d skipped; written to %s",
        len(predictions) - failed - len(skipped),
        failed,
        len(skipped),
        output,
    )
    if failed:
        sys.exit(1)


def write_abstention(
    run_dir: Path, cfg: DictConfig, abstention: Abstention | float, predictions: list[Prediction]
) -> None:
    """abstention.json: the threshold, where it came from, and how many images it answered."""
    uncertain = sum(1 for p in predictions if p.label == UNCERTAIN)
    answered = sum(1 for p in predictions if not p.error) - uncertain
    record: dict = {"answered": answered, "uncertain": uncertain}
    if isinstance(abstention, Abstention):
        record |= {"target_precision": cfg.target_precision, "threshold": abstention.threshold}
        record["on_validation"] = abstention.as_dict()
    else:
        record |= {"min_confidence": abstention, "threshold": abstention}
    write_atomically(run_dir / "abstention.json", json.dumps(record, indent=2))
    threshold = record["threshold"]
    log.info("%d answered, %d uncertain (confidence below %.4f)", answered, uncertain, threshold)


if __name__ == "__main__":
    main()
