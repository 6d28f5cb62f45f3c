"""Score a checkpoint: `python -m src.evaluate ckpt_path=... [data.root=path/to/test]`.

Without data settings: the validation split the checkpoint was trained with. With `data.root`
(or `data=<option> data.root=...`): every usable image of that labelled folder. With
`calibrate=true`: the temperature fitted on the checkpoint's validation split first, the report
before and after it, and the calibrated checkpoint beside the report.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import hydra
import lightning as L
from omegaconf import DictConfig

from src.config.instantiation import build_from_config, to_plain
from src.data.datamodule import ImageDataModule
from src.evaluation.attribution import gradcam_explainer
from src.evaluation.classes import label_mapping
from src.evaluation.data import evaluation_data_settings
from src.evaluation.report import write_validation_report
from src.evaluation.scoring import headline_metric, model_targets, score, view_logits
from src.evaluation.tta import tta_views
from src.models.calibration import fit_temperature, temperature_value
from src.models.checkpoint import load_checkpoint, save_calibrated
from src.models.classifier import ImageClassifier
from src.models.tasks import MULTILABEL
from src.utils.console import quiet_known_messages
from src.utils.errors import UserError, exit_on_user_error

log = logging.getLogger(__name__)

#: Evaluation runs in one process on one device, in float32, whatever the trainer config asks
#: for: every image scored exactly once (a distributed sampler shards and pads), one
#: metrics.json, and the probabilities that `predict` and the exported model give.
ONE_DEVICE = {
    "precision": "32-true",
    "devices": 1,
    "num_nodes": 1,
    "strategy": "auto",
    "sync_batchnorm": False,
    "logger": False,
    "enable_checkpointing": False,
}


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Score the checkpoint; writes `metrics.json` into the run dir and returns the metrics."""
    quiet_known_messages()
    model, trained_on = load_checkpoint(cfg.ckpt_path)
    chosen = to_plain(cfg.data) if cfg.get("data") else {}
    own_split = not any(value is not None for value in chosen.values())
    calibrate = bool(cfg.get("calibrate"))
    if calibrate and trained_on is None:
        raise UserError(
            "calibrate=true fits the temperature on the checkpoint's validation split, and this "
            "checkpoint records no data settings; evaluate without calibrate=true"
        )
    settings = evaluation_data_settings(chosen, trained_on, split=bool(cfg.get("split")))
    datamodule = evaluation_data(settings, model, cfg.paths.output_dir)
    to_model_label = label_mapping(
        datamodule.class_names, model.class_names, subset=bool(cfg.get("class_subset"))
    )
    if cfg.trainer.get("devices") not in (1, "1", None, "auto"):
        log.info("Evaluating in one process on one device (trainer.devices is for training)")
    if str(cfg.trainer.get("precision")) not in ("32-true", "32", "None"):
        log.info("Evaluating in float32, as predict does (trainer.precision is for training)")
    tta = str(cfg.get("tta", "none"))
    views = tta_views(tta)  # an unknown option is refused before any image is read
    trainer: L.Trainer = build_from_config(cfg.trainer, **ONE_DEVICE)
    logits = view_logits(trainer, model, datamodule, views)
    targets = model_targets(datamodule.val_samples, to_model_label, model)
    fitted_on = None
    if calibrate:
        if own_split:
            validation = datamodule, logits[:, :1], targets
        else:
            validation = validation_logits(trainer, model, trained_on, cfg.paths.output_dir)
        fitted_on = calibrate_on(model, *validation)
    result = score(model, logits, targets, tta, fitted_on)
    metrics = result.metrics
    if calibrate:
        calibrated = save_calibrated(
            cfg.ckpt_path, model, Path(cfg.paths.output_dir) / "calibrated.ckpt"
        )
        metrics["calibration"]["checkpoint"] = str(calibrated)
    metrics.update(
        ckpt_path=str(cfg.ckpt_path),
        data_root=str(datamodule.root),
        num_excluded=len(datamodule.excluded),
    )
    explain = None
    if cfg.get("gradcam"):
        explain, metrics["gradcam"] = gradcam_explainer(
            model.net, model.normalise, model.description
        )
    files = write_validation_report(Path(cfg.paths.output_dir), datamodule, result, explain)
    headline = headline_metric(model)
    per_class = "average_precision" if model.task == MULTILABEL else "accuracy"
    log.info(
        "%s %.4f, loss %.4f on %d images of %s (%d files excluded%s); per class %s %s "
        "(written to %s)",
        headline.replace("_", " ").capitalize(),
        metrics[headline],
        metrics["loss"],
        metrics["num_images"],
        datamodule.root,
        metrics["num_excluded"],
        ", listed in excluded_files.txt" if metrics["num_excluded"] else "",
        per_class.replace("_", " "),
        {
            name: None if row[per_class] is None else round(row[per_class], 4)
            for name, row in metrics["per_class"].items()
        },
        files["report"],
    )
    if "before" in metrics["calibration"]:
        before, after = metrics["calibration"]["before"], metrics["calibration"]["after"]
        log.info(
            "Temperature %s (%s): expected calibration error %.4f before, %.4f after; loss "
            "%.4f before, %.4f after",
            metrics["calibration"]["temperature"],
            fitted_on or "the checkpoint's",
            before["expected_calibration_error"],
            after["expected_calibration_error"],
            before["loss"],
            after["loss"],
        )
    metrics["headline"] = headline
    return metrics


def evaluation_data(
    settings: dict[str, Any], model: ImageClassifier, output_dir: str
) -> ImageDataModule:
    """The data module of `settings`, read at the model's input, its files listed in the run
    dir, prepared."""
    datamodule: ImageDataModule = build_from_config(
        settings,
        image_size=model.hparams.image_size,
        crop_pct=model.hparams.crop_pct,
        file_list_dir=output_dir,
        multi_label=model.task == MULTILABEL,
    )
    datamodule.prepare_data()
    return datamodule


def validation_logits(
    trainer: L.Trainer, model: ImageClassifier, trained_on: dict[str, Any], output_dir: str
) -> tuple[ImageDataModule, Any, Any]:
    """The checkpoint's validation split (its data settings), its logits and targets."""
    settings = evaluation_data_settings({}, trained_on, split=False)
    validation = evaluation_data(settings, model, str(Path(output_dir) / "calibration"))
    to_model_label = label_mapping(validation.class_names, model.class_names, subset=False)
    logits = view_logits(trainer, model, validation)
    return validation, logits, model_targets(validation.val_samples, to_model_label, model)


def calibrate_on(
    model: ImageClassifier, validation: ImageDataModule, logits: Any, targets: Any
) -> str:
    """Fit the model's temperature on validation logits [N, 1, C]; says where."""
    model.set_temperature(fit_temperature(logits[:, 0], targets, model.task))
    log.info(
        "Temperature %s fitted on %d validation images of %s",
        temperature_value(model.temperature, model.task),
        len(targets),
        validation.root,
    )
    return (
        f"fitted on the checkpoint's validation split, {len(targets)} images of {validation.root}"
    )


@hydra.main(version_base="1.3", config_path="../conf", config_name="evaluate")
@exit_on_user_error
def main(cfg: DictConfig) -> float:
    metrics = evaluate(cfg)
    return metrics[metrics["headline"]]


if __name__ == "__main__":
    main()
