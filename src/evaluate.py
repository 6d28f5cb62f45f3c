"""Score a checkpoint: `python -m src.evaluate ckpt_path=... [data.root=path/to/test]`.

Without data settings: the validation split the checkpoint was trained with. With `data.root`
(or `data=<option> data.root=...`): every usable image of that labelled folder.
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
from src.evaluation.scoring import headline_metric, score
from src.evaluation.tta import tta_views
from src.models.checkpoint import load_checkpoint
from src.models.tasks import MULTILABEL
from src.utils.console import quiet_known_messages
from src.utils.errors import exit_on_user_error

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
    settings = evaluation_data_settings(chosen, trained_on, split=bool(cfg.get("split")))
    datamodule: ImageDataModule = build_from_config(
        settings,
        image_size=model.hparams.image_size,
        crop_pct=model.hparams.crop_pct,
        file_list_dir=cfg.paths.output_dir,
        multi_label=model.task == MULTILABEL,
    )
    datamodule.prepare_data()
    to_model_label = label_mapping(
        datamodule.class_names, model.class_names, subset=bool(cfg.get("class_subset"))
    )
    if cfg.trainer.get("devices") not in (1, "1", None, "auto"):
        log.info("Evaluating in one process on one device (trainer.devices is for training)")
    if str(cfg.trainer.get("precision")) not in ("32-true", "32", "None"):
        log.info("Evaluating in float32, as predict does (trainer.precision is for training)")
    tta = str(cfg.get("tta", "none"))
    tta_views(tta)  # an unknown option is refused before any image is read
    trainer: L.Trainer = build_from_config(cfg.trainer, **ONE_DEVICE)
    metrics, probabilities, targets = score(trainer, model, datamodule, to_model_label, tta)
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
    files = write_validation_report(
        Path(cfg.paths.output_dir), datamodule, metrics, probabilities, targets, explain
    )
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
    metrics["headline"] = headline
    return metrics


@hydra.main(version_base="1.3", config_path="../conf", config_name="evaluate")
@exit_on_user_error
def main(cfg: DictConfig) -> float:
    metrics = evaluate(cfg)
    return metrics[metrics["headline"]]


if __name__ == "__main__":
    main()
