"""Train an image classifier: `python -m src.train [group=option ...] [key=value ...]`."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
import lightning as L
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig

from src.callbacks.checkpoints import (
    AtomicCheckpointIO,
    best_checkpoint_path,
    checkpoint_to_resume,
)
from src.callbacks.preemption import preemption_of
from src.callbacks.requeue import record_cluster_job
from src.callbacks.run_summary import RunSummary
from src.callbacks.trackers import close_runs
from src.config.checks import check_train_config
from src.config.hparams import compared_settings, result_metrics
from src.config.instantiation import build_from_config, instantiate_group, to_plain
from src.config.model_input import resolve_model_input
from src.finetuning.feature_cache import FeatureCache
from src.finetuning.feature_data import CachedFeatureDataModule
from src.finetuning.lr_finder import find_learning_rate
from src.models.classifier import ImageClassifier
from src.models.losses import class_weights
from src.models.tasks import MONITORED, MULTILABEL
from src.sweeps.ddp import launch_extra_processes_as_this_job
from src.sweeps.jobs import overrides_of_this_run, record_failure_in_sweeps
from src.utils.console import quiet_known_messages
from src.utils.devices import runs_on_cpu
from src.utils.errors import exit_on_user_error

log = logging.getLogger(__name__)

#: Config groups that each add one callback when chosen (`weight_averaging=ema`).
OPT_IN_CALLBACKS = ("weight_averaging", "early_stopping")

#: The module that runs a training: what a sweep job's extra DDP processes start.
ENTRY_POINT = "src.train"

#: Exit status after a SIGTERM that was handled (checkpoint saved): 128 + 15, as shells report it.
EXIT_SIGTERM = 143


def train(cfg: DictConfig) -> float | None:
    """Fit the model as configured; returns the best value of the task's validation metric
    (`val/acc`, or `val/map` for task=multilabel), which sweepers optimise."""
    quiet_known_messages()
    resolve_model_input(cfg)
    check_train_config(cfg)
    run_dir, log_dir = Path(cfg.paths.output_dir), Path(cfg.paths.log_dir)
    overrides = overrides_of_this_run()
    ckpt_path = checkpoint_to_resume(cfg.ckpt_path, cfg.get("resume"), log_dir, run_dir, overrides)
    record_cluster_job(run_dir, overrides)
    if cfg.seed is not None:
        L.seed_everything(cfg.seed, workers=True)

    datamodule = build_datamodule(cfg)
    datamodule.prepare_data()  # the classes decide the head, their counts the class weights
    weights = resolved_class_weights(cfg, datamodule)
    model = build_model(cfg, datamodule.class_names, weights)
    if ckpt_path is None:
        model.load_starting_weights()
    else:
        log.info("Resuming from %s", ckpt_path)
    loggers = instantiate_group(cfg.get("logger"))
    callbacks = instantiate_group(cfg.get("callbacks"))
    callbacks += [build_from_config(cfg[name]) for name in OPT_IN_CALLBACKS if cfg.get(name)]
    run_summary = RunSummary(run_dir, {"overrides": overrides}, monitor=model.monitor)
    trainer = build_trainer(cfg, [*callbacks, run_summary], loggers)
    log_hyperparameters(loggers, cfg)

    try:
        with launch_extra_processes_as_this_job(trainer, entry_point=ENTRY_POINT):
            # The finder fits too: under DDP its processes must run this job only (#11300).
            if cfg.get("tune") and ckpt_path is None:
                find_learning_rate(trainer, model, datamodule, cfg.tune, run_dir)
            elif cfg.get("tune"):
                log.info("tune=lr_find is skipped when resuming: the optimizer holds the rate")
            # weights_only: a checkpoint that would run code when unpickled is refused.
            trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    except SIGTERMException:
        last = run_dir / "checkpoints" / "last.ckpt"
        preemption = preemption_of(trainer)
        if preemption is not None:
            run_summary.write(trainer, "interrupted", "time limit or pre-emption")
            log.warning("Requeueing the job; it resumes from %s", last)
            preemption.requeue()
        else:
            run_summary.write(trainer, "interrupted", "SIGTERM")
            log.warning("Stopped by SIGTERM; resume with ckpt_path=%s", last)
        raise SystemExit(EXIT_SIGTERM) from None
    finally:
        close_runs(loggers, failed=sys.exc_info()[0] is not None)
    return best_score(trainer, model.monitor)


def build_datamodule(cfg: DictConfig) -> L.LightningDataModule:
    """The configured images; with `freeze.cache_features`, the backbone's features of them."""
    images = build_from_config(cfg.data, multi_label=cfg.task == MULTILABEL)
    if not cfg.freeze.get("cache_features"):
        return images
    cache = FeatureCache(Path(cfg.paths.cache_dir) / "features")
    return CachedFeatureDataModule(images, cache, views=cfg.freeze.get("cached_views") or 0)


def resolved_class_weights(
    cfg: DictConfig, datamodule: L.LightningDataModule
) -> list[float] | None:
    """`loss.class_weights` as one weight per class (auto: from the training split's counts)."""
    setting = to_plain(cfg.loss).get("class_weights") if cfg.get("loss") else None
    images = getattr(datamodule, "images", datamodule)  # under cached features: the images
    training = images.training_samples()
    counts = images.class_counts(training)
    weights = class_weights(setting, images.class_names, counts, len(training), cfg.task)
    if weights is not None:
        shown = ", ".join(f"{n} {w:.3g}" for n, w in zip(images.class_names, weights, strict=True))
        log.info("Class weights (loss.class_weights=%s): %s", setting, shown)
    return weights


def build_model(
    cfg: DictConfig, class_names: list[str], class_weights: list[float] | None = None
) -> ImageClassifier:
    """The LightningModule, from plain values only (what a checkpoint can hold)."""
    return ImageClassifier(
        class_names=class_names,
        model=to_plain(cfg.model),
        freeze=to_plain(cfg.freeze),
        optimizer=to_plain(cfg.optimizer),
        scheduler=to_plain(cfg.scheduler),
        image_size=cfg.data.image_size,
        label_smoothing=cfg.label_smoothing,
        crop_pct=cfg.data.crop_pct,
        task=cfg.task,
        loss={**(to_plain(cfg.get("loss")) or {}), "class_weights": class_weights},
    )


def build_trainer(cfg: DictConfig, callbacks: list[L.Callback], loggers: list) -> L.Trainer:
    """The configured Trainer, with atomic checkpoint writes and what this machine supports."""
    if not loggers:
        # Lightning refuses a learning-rate monitor without a logger to write to.
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    sync_batchnorm = bool(cfg.trainer.get("sync_batchnorm")) and not runs_on_cpu(cfg.trainer)
    if cfg.trainer.get("sync_batchnorm") and not sync_batchnorm:
        log.info("SyncBatchNorm works on GPUs only: each CPU process keeps its own statistics")
    return build_from_config(
        cfg.trainer,
        callbacks=callbacks,
        logger=loggers or False,
        sync_batchnorm=sync_batchnorm,
        plugins=[AtomicCheckpointIO()],
    )


def log_hyperparameters(loggers: list, cfg: DictConfig) -> None:
    """The compared settings; TensorBoard's hparams table also gets the result metrics."""
    hparams = compared_settings(cfg)
    results = result_metrics(MONITORED[cfg.task])
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.log_hyperparams(hparams, metrics=dict.fromkeys(results, 0.0))
        else:
            logger.log_hyperparams(hparams)


def best_score(trainer: L.Trainer, monitor: str) -> float | None:
    """The best value of `monitor` in the fit, logged with the best checkpoint's path."""
    best = trainer.callback_metrics.get(f"{monitor}_best")
    if best is not None:
        log.info("Best %s: %.4f", monitor, float(best))
    best_path = best_checkpoint_path(trainer)
    if best_path is not None:
        log.info("Best checkpoint: %s", best_path)
    return None if best is None else float(best)


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
@exit_on_user_error
@record_failure_in_sweeps
def main(cfg: DictConfig) -> float | None:
    return train(cfg)


if __name__ == "__main__":
    main()
