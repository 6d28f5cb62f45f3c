"""Stop at the first non-finite training loss instead of training on garbage until the end."""

from __future__ import annotations

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.trainer.states import TrainerFn

from src.callbacks.checkpoints import best_checkpoint_path
from src.utils.errors import UserError


class NonFiniteLossError(UserError):
    """The training loss became NaN or infinite."""


class StopOnNonFiniteLoss(Callback):
    """Stops every process of the run at the first NaN or infinite training loss, before a
    checkpoint or a validation of the broken weights.

    Each step only records, on the device, the first non-finite loss and its step: reading it
    every step would make each step wait for the GPU. The record is read at the logging interval
    (`trainer.log_every_n_steps`, when Lightning reads the metrics anyway), before validation and
    at the end of each epoch, and the decision is reduced over the processes: when one of them
    saw a NaN, all stop together instead of the others waiting in the next all-reduce.
    """

    def __init__(self) -> None:
        self._first_step: torch.Tensor | None = None  # -1 while every loss was finite
        self._first_value: torch.Tensor | None = None

    def on_train_batch_end(self, trainer: L.Trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if isinstance(loss, torch.Tensor):
            self._record(loss.detach(), max(trainer.global_step - 1, 0))
        if trainer.global_step % trainer.log_every_n_steps == 0:
            self._stop_if_any_process_saw_one(trainer)

    def on_validation_start(self, trainer: L.Trainer, pl_module) -> None:
        if trainer.state.fn == TrainerFn.FITTING:
            self._stop_if_any_process_saw_one(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module) -> None:
        self._stop_if_any_process_saw_one(trainer)

    def _record(self, loss: torch.Tensor, step: int) -> None:
        if self._first_step is None or self._first_step.device != loss.device:
            self._first_step = torch.full((), -1, dtype=torch.long, device=loss.device)
            self._first_value = torch.zeros((), device=loss.device)
        first = ~torch.isfinite(loss) & (self._first_step < 0)
        self._first_step = torch.where(first, step, self._first_step)
        self._first_value = torch.where(first, loss.float(), self._first_value)

    def _stop_if_any_process_saw_one(self, trainer: L.Trainer) -> None:
        seen_here = self._first_step is not None and int(self._first_step) >= 0
        if not trainer.strategy.reduce_boolean_decision(seen_here, all=False):
            return
        if seen_here:
            where = f"became {float(self._first_value)} at step {int(self._first_step)}"
        else:
            where = f"became non-finite in another process, by step {trainer.global_step - 1}"
        best_path = best_checkpoint_path(trainer)
        best = f"; the best checkpoint is kept: {best_path}" if best_path else ""
        raise NonFiniteLossError(
            f"train/loss {where} (epoch {trainer.current_epoch}); stopped{best}. "
            "Lower optimizer.lr, or check the data"
        )
