"""Write `<run dir>/summary.json`: the one-glance record of a run that sweep reports read."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from src.utils.io import write_atomically

SUMMARY_FILE = "summary.json"


def write_summary(run_dir: str | Path, summary: dict[str, Any]) -> Path:
    """Write atomically, so a report never reads half a file."""
    return write_atomically(Path(run_dir) / SUMMARY_FILE, json.dumps(summary, indent=2))


class RunSummary(Callback):
    """Tracks parameter counts, the best value of the validation metric `monitor` (`val/acc`,
    or `val/map` for multi-label runs) and its epoch, final `val/loss`, wall time and training
    images/s, and `monitor` after each epoch with the seconds since the fit started (sweep reports
    time how long each setting takes to a target); `extra` entries (e.g. the run's overrides) are
    written as they are."""

    def __init__(
        self, run_dir: str | Path, extra: dict[str, Any] | None = None, monitor: str = "val/acc"
    ) -> None:
        self.run_dir = Path(run_dir)
        self.extra = dict(extra or {})
        self.monitor = monitor
        self.best_score: float | None = None
        self.best_epoch: int | None = None
        self.final_val_loss: float | None = None
        self.trainable_params: int | None = None
        self.total_params: int | None = None
        self.curve: list[dict[str, float]] = []
        self.train_images = 0
        self.train_seconds = 0.0
        self._epoch_started = 0.0
        self._last_batch_end = 0.0
        self._fit_started = time.perf_counter()

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._fit_started = time.perf_counter()
        parameters = list(pl_module.parameters())
        self.total_params = sum(p.numel() for p in parameters)
        self.trainable_params = sum(p.numel() for p in parameters if p.requires_grad)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._epoch_started = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.train_images += len(batch[1]) * trainer.world_size
        self._last_batch_end = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Lightning validates before this hook: count time up to the last training batch only.
        self.train_seconds += self._last_batch_end - self._epoch_started

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        metrics = trainer.callback_metrics
        if self.monitor in metrics:
            score = float(metrics[self.monitor])
            if self.best_score is None or score > self.best_score:
                self.best_score, self.best_epoch = score, trainer.current_epoch
            seconds = round(time.perf_counter() - self._fit_started, 3)
            self.curve.append({"epoch": trainer.current_epoch, "score": score, "time_s": seconds})
        if "val/loss" in metrics:
            self.final_val_loss = float(metrics["val/loss"])

    def summary(self, trainer: L.Trainer, status: str, error: str | None = None) -> dict[str, Any]:
        best_path = last_path = None
        for callback in trainer.checkpoint_callbacks:
            if isinstance(callback, ModelCheckpoint) and callback.monitor:
                best_path = callback.best_model_path or None
            elif isinstance(callback, ModelCheckpoint):
                last_path = callback.best_model_path or callback.last_model_path or None
        rate = self.train_images / self.train_seconds if self.train_seconds > 0 else None
        return {
            **self.extra,
            "trainable_params": self.trainable_params,
            "total_params": self.total_params,
            "status": status,
            "error": error,
            "monitor": self.monitor,
            "best_score": self.best_score,
            "best_epoch": self.best_epoch,
            "final_val_loss": None
            if self.final_val_loss is None or math.isnan(self.final_val_loss)
            else self.final_val_loss,
            "epochs": trainer.current_epoch,
            "wall_time_s": round(time.perf_counter() - self._fit_started, 3),
            "train_images_per_s": None if rate is None else round(rate, 2),
            "best_ckpt": best_path,
            "last_ckpt": last_path,
            "curve": self.curve,
        }

    def write(self, trainer: L.Trainer, status: str, error: str | None = None) -> None:
        if trainer.is_global_zero:
            write_summary(self.run_dir, self.summary(trainer, status, error))

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for logger in trainer.loggers:  # a result column of the hparams table
            logger.log_metrics({"time/train_s": self.train_seconds}, step=trainer.global_step)
        self.write(trainer, "finished")
