"""Phase timings shared by the three runs, and the Lightning callback that takes them."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback


@dataclass
class RunTimes:
    """Images and seconds of the timed train and validation phases of one run, summed over epochs.

    Train time runs from the start of an epoch (data loader start-up included) to the end of its
    last optimizer step; validation time from there to the end of the validation epoch.
    """

    train_images: int = 0
    train_s: float = 0.0
    val_images: int = 0
    val_s: float = 0.0
    wall_s: float = 0.0
    val_acc: float | None = None
    threads: int | None = None
    #: Of `train_s`, the time the training step waited for its batch (project runs only).
    data_wait_s: float | None = None
    #: Validation accuracy after each epoch, and the seconds from the start to that point.
    epoch_val_acc: list[float] = field(default_factory=list)
    epoch_end_s: list[float] = field(default_factory=list)

    @property
    def train_rate(self) -> float:
        return self.train_images / self.train_s if self.train_s > 0 else 0.0

    @property
    def val_rate(self) -> float:
        return self.val_images / self.val_s if self.val_s > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "train_images_per_s": self.train_rate,
            "val_images_per_s": self.val_rate,
            "data_wait_fraction": self.data_wait_fraction,
        }

    @property
    def data_wait_fraction(self) -> float | None:
        if self.data_wait_s is None or self.train_s <= 0:
            return None
        return self.data_wait_s / self.train_s


def batch_size_of(batch: Any) -> int:
    """Images in a batch: `(images, labels)` pairs, or anything whose last item is the labels."""
    return len(batch[-1]) if isinstance(batch, (list, tuple)) else len(batch)


class PhaseTimer(Callback):
    """Times training and validation epochs the way the reference loop is timed; sanity-check
    batches are left out. Writes the totals as JSON to `output` when fitting ends, so that the
    harness can read them although Hydra instantiates the callback inside `train()`.

    Data wait is the time from the end of one training step to the start of the next: waiting
    for the loader, and with `data.decode_on_device` decoding and transforming the batch. On a
    GPU each step is synchronised first, so the GPU had no model work then (the price: the CPU
    cannot run ahead of the GPU between steps, which costs these runs a little speed).
    """

    def __init__(self, output: str) -> None:
        self.output = Path(output)
        self.times = RunTimes(data_wait_s=0.0)
        self._train_start = 0.0
        self._last_train_batch_end = 0.0

    def _now(self) -> float:
        return time.perf_counter()

    def _start_training_clock(self) -> None:
        """Training time, and the wait for the first batch, count from here."""
        self._train_start = self._now()
        self._last_train_batch_end = self._train_start

    # Lightning creates the first epoch's loader iterator (workers, first batch) before
    # `on_train_epoch_start`, right after the sanity check: the first epoch starts there.
    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.times.threads = torch.get_num_threads()
        self._start_training_clock()

    def on_sanity_check_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start_training_clock()

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch > 0:
            self._start_training_clock()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        assert self.times.data_wait_s is not None
        self.times.data_wait_s += self._now() - self._last_train_batch_end

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if pl_module.device.type == "cuda":
            torch.cuda.synchronize(pl_module.device)
        # Every DDP process takes a batch of the same size per step: images of all of them.
        self.times.train_images += batch_size_of(batch) * trainer.world_size
        self._last_train_batch_end = self._now()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Validation runs before this hook: count time up to the last training step only.
        self.times.train_s += self._last_train_batch_end - self._train_start

    def on_validation_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ) -> None:
        if not trainer.sanity_checking:
            self.times.val_images += batch_size_of(batch) * trainer.world_size

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # The validation loader's iterator is made before any validation hook, so validation
        # starts where the last training step ended.
        if not trainer.sanity_checking:
            self.times.val_s += self._now() - self._last_train_batch_end

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        accuracy = trainer.callback_metrics.get("val/acc")
        if not trainer.sanity_checking and accuracy is not None:
            self.times.epoch_val_acc.append(float(accuracy))
            self.times.epoch_end_s.append(self._now())  # `run_project` makes it relative

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        accuracy = trainer.callback_metrics.get("val/acc")
        self.times.val_acc = None if accuracy is None else float(accuracy)
        if not trainer.is_global_zero:
            return
        self.output.parent.mkdir(parents=True, exist_ok=True)
        self.output.write_text(json.dumps(asdict(self.times)), encoding="utf-8")


def read_times(path: Path) -> RunTimes:
    return RunTimes(**json.loads(path.read_text(encoding="utf-8")))
