"""Stop at the first non-finite training loss instead of training on garbage until the end."""

from __future__ import annotations

import lightning as L
import torch

from src.callbacks.checkpoints import best_checkpoint_path
from src.callbacks.stop_together import StopTogether
from src.utils.errors import UserError


class NonFiniteLossError(UserError):
    """The training loss became NaN or infinite."""


class StopOnNonFiniteLoss(StopTogether):
    """Stops every process of the run at the first NaN or infinite training loss, before a
    checkpoint or a validation of the broken weights.

    Each step only records, on the device, the first non-finite loss and its step: reading it
    every step would make each step wait for the GPU. `StopTogether` reads the record.
    """

    def __init__(self) -> None:
        self._first_step: torch.Tensor | None = None  # -1 while every loss was finite
        self._first_value: torch.Tensor | None = None

    def on_train_batch_end(self, trainer: L.Trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if isinstance(loss, torch.Tensor):
            self._record(loss.detach(), max(trainer.global_step - 1, 0))
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def _record(self, loss: torch.Tensor, step: int) -> None:
        if self._first_step is None or self._first_step.device != loss.device:
            self._first_step = torch.full((), -1, dtype=torch.long, device=loss.device)
            self._first_value = torch.zeros((), device=loss.device)
        first = ~torch.isfinite(loss) & (self._first_step < 0)
        self._first_step = torch.where(first, step, self._first_step)
        self._first_value = torch.where(first, loss.float(), self._first_value)

    def finding(self, trainer: L.Trainer) -> str | None:
        if self._first_step is None or int(self._first_step) < 0:
            return None
        return f"became {float(self._first_value)} at step {int(self._first_step)}"

    def error(self, trainer: L.Trainer, finding: str | None) -> Exception:
        if finding is None:
            finding = f"became non-finite in another process, by step {trainer.global_step - 1}"
        best_path = best_checkpoint_path(trainer)
        best = f"; the best checkpoint is kept: {best_path}" if best_path else ""
        return NonFiniteLossError(
            f"train/loss {finding} (epoch {trainer.current_epoch}); stopped{best}. "
            "Lower optimizer.lr, or check the data"
        )
