"""Classify images: `python -m src.predict ckpt_path=... input=folder_or_image`, or with an
exported model, `python -m src.predict model_file=model.onnx input=...` (onnxruntime).

Writes `predictions.csv` into the run dir and prints one row per file; files that cannot be
decoded get a row with the reason, and the exit status is 1 when any file failed.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from src.data.images import pixel_limit
from src.data.samples import scan_inputs
from src.evaluation.tta import tta_views
from src.serving.classifiers import CheckpointClassifier, Classifier, OnnxClassifier
from src.serving.prediction import Prediction, gradcam_writer, predict_files, write_csv
from src.utils.devices import default_num_workers
from src.utils.errors import UserError, exit_on_user_error

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
    predictions = predict_files(
        files, classifier, cfg.batch_size, max_pixels, views, workers, on_batch
    )
    predictions += [Prediction(path, error=reason) for path, reason in skipped.items()]
    output = run_dir / "predictions.csv"
    write_csv(output, predictions, classifier.class_names)
    for p in predictions:
        # a multi-label prediction with no class at or above its threshold has no label
        label = "SKIPPED" if p.path in skipped else "ERROR" if p.error else p.label or "(none)"
        print(f"{p.path}\t{label}\t{p.error or f'{p.probability:.4f}'}")
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


if __name__ == "__main__":
    main()
