"""At the end of training, the best checkpoint calibrated on the validation split and its
evaluation report: in the run dir and in TensorBoard, so that the run's page shows its mistakes,
not only its curves."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import TensorBoardLogger
from PIL import Image

from src.callbacks.checkpoints import best_checkpoint_path
from src.callbacks.trackers import publish_report
from src.data.datamodule import ImageDataModule
from src.evaluation.report import write_validation_report
from src.evaluation.scoring import headline_metric, logits_over, model_targets, score
from src.finetuning.feature_data import FEATURE_BATCH_SIZE
from src.models.calibration import fit_temperature, temperature_value
from src.models.checkpoint import load_classifier, save_calibrated

log = logging.getLogger(__name__)

#: The metrics of the report written as TensorBoard scalars (tag `best_checkpoint/<name>`).
SCALARS = (
    "accuracy",
    "loss",
    "macro_f1",
    "macro_roc_auc",
    "expected_calibration_error",
    "mean_average_precision",
    "f1_macro",
    "exact_match",
)


class BestCheckpointReport(Callback):
    """When the fit ends (global rank 0 only): with `calibrate`, fit the best checkpoint's
    temperature on the validation images and write it into best.ckpt (atomically; nothing else
    in the file changes); then score it there: `<dirpath>/report.md`, metrics.json and the
    figures, as `python -m src.evaluate` writes them, and the same figures, metrics and report
    in TensorBoard, and as MLflow's or W&B's artifacts.

    Nothing happens when no checkpoint monitored a metric (e.g. `fast_dev_run`).
    """

    def __init__(self, dirpath: str | Path, calibrate: bool = True) -> None:
        super().__init__()
        self.dirpath = Path(dirpath)
        self.calibrate = calibrate

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        best = best_checkpoint_path(trainer)
        if not trainer.is_global_zero or best is None:
            return
        images = image_data(trainer)
        model = load_classifier(best)
        # the trainer's device: by now the strategy's teardown has moved pl_module to the CPU
        device = trainer.strategy.root_device
        logits = logits_of_cached_features(trainer, model, device)
        if logits is None:
            scored = images.eval_dataset(images.val_samples)
            logits = logits_over(model, scored, images.batch_size, device)
        same_classes = list(range(len(model.class_names)))
        targets = model_targets(images.val_samples, same_classes, model)
        fitted_on = None
        if self.calibrate:
            model.set_temperature(fit_temperature(logits[:, 0], targets, model.task))
            save_calibrated(best, model, best)
            fitted_on = f"fitted on these {len(targets)} validation images"
            log.info(
                "Calibrated %s: temperature %s (on the validation split)",
                best.name,
                temperature_value(model.temperature, model.task),
            )
        result = score(model, logits, targets, fitted_on=fitted_on)
        metrics = result.metrics
        metrics.update(ckpt_path=str(best), data_root=str(images.root))
        files = write_validation_report(self.dirpath, images, result)
        headline = headline_metric(model)
        log.info(
            "Best checkpoint: %s %.4f, loss %.4f on %d validation images; report in %s",
            headline.replace("_", " "),
            metrics[headline],
            metrics["loss"],
            metrics["num_images"],
            files["report"],
        )
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                log_to_tensorboard(logger, metrics, files, trainer.global_step)
            else:
                publish_report(logger, self.dirpath, {name: metrics.get(name) for name in SCALARS})


def logits_of_cached_features(
    trainer: Trainer, model: LightningModule, device: torch.device
) -> torch.Tensor | None:
    """With cached features (`freeze=all`), the validation images' logits [N, 1, C] from them:
    the frozen backbone of the best checkpoint is the one that computed them, so only its head
    runs (the images are read again only for the top-losses gallery). None without them."""
    features_of = getattr(trainer.datamodule, "validation_features", None)
    features = features_of() if features_of is not None else None
    if features is None:
        return None
    model = model.to(device).eval()
    with torch.inference_mode():
        batches = torch.split(features, FEATURE_BATCH_SIZE)
        logits = [model.logits_of_features(b.to(device)).float().cpu() for b in batches]
    return torch.cat(logits).unsqueeze(1)


def image_data(trainer: Trainer) -> ImageDataModule:
    """The images behind the fit's data (under cached features too: the report shows images)."""
    datamodule = trainer.datamodule
    return getattr(datamodule, "images", datamodule)


def log_to_tensorboard(
    logger: TensorBoardLogger, metrics: dict, files: dict[str, Path], step: int
) -> None:
    experiment = logger.experiment
    for name in SCALARS:
        if metrics.get(name) is not None:
            experiment.add_scalar(f"best_checkpoint/{name}", metrics[name], step)
    for name, path in files.items():
        if path.suffix == ".png":
            with Image.open(path) as png:
                pixels = np.asarray(png.convert("RGB"))
            experiment.add_image(f"best_checkpoint/{name}", pixels, step, dataformats="HWC")
    experiment.add_text("best_checkpoint/report", files["report"].read_text(encoding="utf-8"), step)
    experiment.flush()
