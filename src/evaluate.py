"""Evaluate a checkpoint on a validation split: `python -m src.evaluate ckpt_path=...`."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf
from torchmetrics.functional.classification import multiclass_confusion_matrix

from src.config.instantiation import build_from_config, to_plain
from src.data.datamodule import ImageFolderDataModule
from src.models.checkpoint import load_checkpoint
from src.utils.errors import UserError, exit_on_user_error

log = logging.getLogger(__name__)


def build_datamodule(
    cfg: DictConfig, trained_on: dict[str, Any] | None, image_size: int
) -> ImageFolderDataModule:
    """The data chosen on the command line, or else the data the checkpoint was trained on."""
    if not cfg.get("data") and trained_on is None:
        raise UserError(
            f"ckpt_path={cfg.ckpt_path} records no data settings; choose the data with "
            "data=folder data.root=path/to/images"
        )
    data_config = OmegaConf.create(to_plain(cfg.data) if cfg.get("data") else trained_on)
    data_config.image_size = image_size
    data_config.file_list_dir = cfg.paths.output_dir
    return build_from_config(data_config)


def summarise(
    probabilities: torch.Tensor, targets: torch.Tensor, class_names: list[str]
) -> dict[str, Any]:
    """Accuracy, mean cross-entropy, per-class accuracy and confusion matrix (rows: true class)."""
    predictions = probabilities.argmax(dim=1)
    confusion = multiclass_confusion_matrix(predictions, targets, len(class_names))
    per_class = confusion.diag().float() / confusion.sum(dim=1).clamp(min=1).float()
    picked = probabilities[torch.arange(len(targets)), targets].clamp(min=1e-12)
    return {
        "num_images": len(targets),
        "accuracy": (predictions == targets).float().mean().item(),
        "loss": (-picked.log()).mean().item(),
        "per_class_accuracy": dict(zip(class_names, per_class.tolist(), strict=True)),
        "confusion_matrix": confusion.tolist(),
        "class_names": class_names,
    }


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    model, trained_on = load_checkpoint(cfg.ckpt_path)
    datamodule = build_datamodule(cfg, trained_on, model.hparams.image_size)
    datamodule.prepare_data()
    if datamodule.class_names != model.class_names:
        log.warning(
            "Data classes %s differ from the checkpoint's %s",
            datamodule.class_names,
            model.class_names,
        )
    trainer: L.Trainer = build_from_config(cfg.trainer, logger=False, enable_checkpointing=False)
    batches = trainer.predict(model, datamodule=datamodule)
    probabilities = torch.cat(batches)
    targets = torch.tensor([sample.label for sample in datamodule.val_samples])
    metrics = summarise(probabilities, targets, model.class_names)
    metrics["ckpt_path"] = str(cfg.ckpt_path)
    output = Path(cfg.paths.output_dir) / "metrics.json"
    output.write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    log.info(
        "Accuracy %.4f, loss %.4f on %d images; per class %s (written to %s)",
        metrics["accuracy"],
        metrics["loss"],
        metrics["num_images"],
        {name: round(value, 4) for name, value in metrics["per_class_accuracy"].items()},
        output,
    )
    return metrics


@hydra.main(version_base="1.3", config_path="../conf", config_name="evaluate")
@exit_on_user_error
def main(cfg: DictConfig) -> float:
    return evaluate(cfg)["accuracy"]


if __name__ == "__main__":
    main()
