"""Train an image classifier: `python -m src.train [group=option ...] [key=value ...]`."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import hydra
import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig

from src.callbacks.checkpoints import AtomicCheckpointIO
from src.callbacks.run_summary import RunSummary, write_summary
from src.callbacks.visualization import TensorBoardFigures
from src.config.checks import check_train_config
from src.config.instantiation import flatten, instantiate_group, to_plain
from src.data.datamodule import ImageFolderDataModule
from src.finetuning.feature_cache import FeatureCache
from src.finetuning.feature_data import CachedFeatureDataModule, cached_features
from src.models.classifier import ImageClassifier
from src.sweeps.ddp import launch_extra_processes_as_this_job
from src.utils.devices import is_launcher_process, runs_on_cpu
from src.utils.errors import UserError, exit_on_user_error, find_user_error

log = logging.getLogger(__name__)

#: Exit status after a SIGTERM that was handled (checkpoint saved): 128 + 15, as shells report it.
EXIT_SIGTERM = 143


def refuse_used_run_dir(output_dir: Path, resuming: bool) -> None:
    """Never let a new run overwrite the checkpoints of an earlier one in the same dir."""
    checkpoints = output_dir / "checkpoints"
    if not resuming and is_launcher_process() and any(checkpoints.glob("*.ckpt")):
        raise UserError(
            f"{checkpoints} already holds checkpoints of an earlier run; "
            "pick a new hydra.run.dir or resume with ckpt_path=<that run>/checkpoints/last.ckpt"
        )


def overrides_of_this_run() -> list[str]:
    """The command-line overrides of this run (or sweep job), as Hydra recorded them."""
    if not HydraConfig.initialized():
        return []
    return list(HydraConfig.get().overrides.task)


def build_model(cfg: DictConfig, class_names: list[str]) -> ImageClassifier:
    return ImageClassifier(
        class_names=class_names,
        model=to_plain(cfg.model),
        freeze=to_plain(cfg.freeze),
        optimizer=to_plain(cfg.optimizer),
        scheduler=to_plain(cfg.scheduler),
        image_size=cfg.data.image_size,
        label_smoothing=cfg.label_smoothing,
        data_config=to_plain(cfg.data),
    )


def find_resume_checkpoint(resume: str, log_dir: Path, this_run: Path) -> Path:
    """`last.ckpt` of the run dir `resume`, or of the newest earlier run for `latest`."""
    if resume == "latest":
        candidates = sorted(
            (
                path
                for path in log_dir.glob("**/checkpoints/last.ckpt")
                if this_run.resolve() not in path.resolve().parents
            ),
            key=lambda path: path.stat().st_mtime,
        )
        if not candidates:
            raise UserError(f"resume=latest found no checkpoints/last.ckpt under {log_dir}")
        return candidates[-1]
    checkpoint = Path(resume) / "checkpoints" / "last.ckpt"
    if not checkpoint.is_file():
        raise UserError(
            f"resume={resume}: {checkpoint} does not exist; pass a run dir of this project "
            "(outputs/train/<run>) or resume=latest"
        )
    return checkpoint


def apply_resume_option(cfg: DictConfig) -> None:
    """Turn `resume=<run dir>|latest` into the `ckpt_path` it stands for."""
    if not cfg.get("resume"):
        return
    if cfg.ckpt_path:
        raise UserError("give either resume=<run dir> or ckpt_path=<file>, not both")
    cfg.ckpt_path = str(
        find_resume_checkpoint(str(cfg.resume), Path(cfg.paths.log_dir), Path(cfg.paths.output_dir))
    )


def is_sweep_job() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def build_trainer(
    cfg: DictConfig, callbacks: list[L.Callback], loggers: list, run_summary: RunSummary
) -> L.Trainer:
    """The configured Trainer, with atomic checkpoint writes and what this machine supports."""
    if not loggers:
        # Lightning refuses a learning-rate monitor without a logger to write to.
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    sync_batchnorm = bool(cfg.trainer.get("sync_batchnorm")) and not runs_on_cpu(cfg.trainer)
    if cfg.trainer.get("sync_batchnorm") and not sync_batchnorm:
        log.info("SyncBatchNorm works on GPUs only: each CPU process keeps its own statistics")
    return instantiate(
        cfg.trainer,
        callbacks=[*callbacks, run_summary],
        logger=loggers or False,
        sync_batchnorm=sync_batchnorm,
        plugins=[AtomicCheckpointIO()],
    )


def log_hyperparameters(loggers: list, cfg: DictConfig) -> None:
    """The whole composed config; TensorBoard's hparams table also gets the best val/acc."""
    hparams = flatten(to_plain(cfg))
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.log_hyperparams(hparams, metrics={"val/acc_best": 0.0})
        else:
            logger.log_hyperparams(hparams)


def feature_data(
    cfg: DictConfig, images: ImageFolderDataModule, model: ImageClassifier
) -> CachedFeatureDataModule:
    """Cached backbone features of the images, computed with the weights training starts from."""
    if cfg.ckpt_path is not None:
        state = torch.load(cfg.ckpt_path, map_location="cpu", weights_only=True)["state_dict"]
        model.load_state_dict(state)
    model.inputs_are_features = True
    return cached_features(images, model, FeatureCache(Path(cfg.paths.cache_dir) / "features"))


def train(cfg: DictConfig) -> float | None:
    """Fit the model as configured; returns the best `val/acc` (the metric sweepers optimise)."""
    check_train_config(cfg)
    apply_resume_option(cfg)
    if cfg.seed is not None:
        L.seed_everything(cfg.seed, workers=True)
    refuse_used_run_dir(Path(cfg.paths.output_dir), resuming=cfg.ckpt_path is not None)

    datamodule = instantiate(cfg.data, model_on_cpu=runs_on_cpu(cfg.trainer))
    datamodule.prepare_data()
    if len(datamodule.class_names) < 2:
        raise UserError(
            f"{datamodule.root} holds a single class {datamodule.class_names}; "
            "a classifier needs at least two class folders"
        )
    model = build_model(cfg, datamodule.class_names)
    trainable, total = model.parameter_counts()
    log.info(
        "%s, %d classes %s: %s of %s parameters trainable (%.1f%%)",
        cfg.model.name,
        len(datamodule.class_names),
        datamodule.class_names,
        f"{trainable:,}",
        f"{total:,}",
        100.0 * trainable / total,
    )
    if cfg.ckpt_path is None:
        model.load_starting_weights()
    else:
        log.info("Resuming from %s", cfg.ckpt_path)

    if cfg.model.get("compile") and not cfg.freeze.get("cache_features"):
        # In place, so checkpoints keep the plain parameter names evaluate and predict load.
        # (On cached features only the head runs: nothing worth compiling.)
        model.net.compile()
    loggers = instantiate_group(cfg.get("logger"))
    callbacks = instantiate_group(cfg.get("callbacks"))
    fit_data = datamodule
    if cfg.freeze.get("cache_features"):
        fit_data = feature_data(cfg, datamodule, model)
        # The batches hold features, not images: there is nothing to draw.
        callbacks = [c for c in callbacks if not isinstance(c, TensorBoardFigures)]
    run_summary = RunSummary(
        cfg.paths.output_dir,
        {
            "overrides": overrides_of_this_run(),
            "trainable_params": trainable,
            "total_params": total,
        },
    )
    trainer = build_trainer(cfg, callbacks, loggers, run_summary)
    log_hyperparameters(loggers, cfg)

    try:
        with launch_extra_processes_as_this_job() if is_sweep_job() else contextlib.nullcontext():
            trainer.fit(model, datamodule=fit_data, ckpt_path=cfg.ckpt_path)
    except SIGTERMException:
        run_summary.write(trainer, "interrupted", "SIGTERM")
        last = Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"
        log.warning("Stopped by SIGTERM; resume with ckpt_path=%s", last)
        raise SystemExit(EXIT_SIGTERM) from None

    best = trainer.callback_metrics.get("val/acc_best")
    if best is not None:
        log.info("Best val/acc: %.4f", float(best))
    for checkpoint in trainer.checkpoint_callbacks:
        if checkpoint.monitor and checkpoint.best_model_path:
            log.info("Best checkpoint (%s): %s", checkpoint.monitor, checkpoint.best_model_path)
    return None if best is None else float(best)


def train_or_record_failure(cfg: DictConfig) -> float | None:
    """In a sweep, a failing job is recorded in its summary.json and the sweep goes on."""
    try:
        return train(cfg)
    except Exception as error:
        if not is_sweep_job():
            raise
        message = " ".join(str(find_user_error(error) or error).split()) or type(error).__name__
        log.exception("Job failed: %s", message)
        if is_launcher_process():
            write_summary(
                cfg.paths.output_dir,
                {"overrides": overrides_of_this_run(), "status": "failed", "error": message},
            )
        return None  # sweepers such as Optuna record a trial without a value as failed


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
@exit_on_user_error
def main(cfg: DictConfig) -> float | None:
    return train_or_record_failure(cfg)


if __name__ == "__main__":
    main()
