"""The settings people compare across runs, for the loggers' hparams tables (TensorBoard's
dashboard, CSV's hparams.yaml). The whole composed config stays in `<run dir>/.hydra/`."""

from __future__ import annotations

from typing import Any

from omegaconf import Container, DictConfig, OmegaConf

#: Result metrics of TensorBoard's hparams table; each is logged as a scalar under this tag.
RESULT_METRICS = ("val/acc_best", "val/loss", "time/train_s")


def _short(target: str | None) -> str:
    """`torch.optim.SGD` -> `SGD`."""
    return (target or "none").rsplit(".", 1)[-1]


def _text(value: Any) -> Any:
    """Lists, mappings and None as text: hparams tables hold numbers, booleans and strings."""
    if isinstance(value, Container):
        value = OmegaConf.to_container(value, resolve=True)
    if value is None:
        return "null"
    if isinstance(value, (list, tuple, dict)):
        return str(value)
    return value


def compared_settings(cfg: DictConfig) -> dict[str, Any]:
    """One column per setting people compare: model, weights, freezing, optimizer, schedule,
    data and seed."""
    freeze, optimizer = cfg.freeze, cfg.optimizer
    scheduler = (cfg.get("scheduler") or {}).get("scheduler") or {}
    settings = {
        "model": cfg.model.name,
        "pretrained": cfg.model.get("pretrained"),
        "weights_path": cfg.model.get("weights_path"),
        "freeze.trainable": freeze.get("trainable"),
        "freeze.train_bn": freeze.get("train_bn"),
        "freeze.unfreeze_at": freeze.get("unfreeze_at"),
        "freeze.cache_features": freeze.get("cache_features", False),
        "freeze.cached_views": freeze.get("cached_views", 0),
        "optimizer": _short(optimizer.get("_target_")),
        "lr": optimizer.get("lr"),
        "backbone_lr_mult": optimizer.get("backbone_lr_mult", 1.0),
        "scheduler": _short(scheduler.get("_target_")),
        "batch_size": cfg.data.batch_size,
        "image_size": cfg.data.image_size,
        "max_epochs": cfg.trainer.max_epochs,
        "augment": (cfg.data.get("augment") or {}).get("enabled"),
        "label_smoothing": cfg.get("label_smoothing"),
        "seed": cfg.get("seed"),
        "data.root": cfg.data.root,
    }
    return {name: _text(value) for name, value in settings.items()}
