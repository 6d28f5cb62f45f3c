"""Stop at the first non-finite training loss instead of training on garbage until the end."""

from __future__ import annotations

import math

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from src.utils.errors import UserError


class NonFiniteLossError(UserError):
    """The training loss became NaN or infinite."""


class StopOnNonFiniteLoss(Callback):
    """Raises before the optimizer state or any later checkpoint can be polluted."""

    def on_train_batch_end(self, trainer: L.Trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is None:
            return
        value = float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss)
        if math.isfinite(value):
            return
        best = ""
        for callback in trainer.checkpoint_callbacks:
            if callback.monitor and callback.best_model_path:
                best = f"; the best checkpoint is kept: {callback.best_model_path}"
        raise NonFiniteLossError(
            f"train/loss became {value} at epoch {trainer.current_epoch}, "
            f"step {max(trainer.global_step - 1, 0)} (batch {batch_idx}); stopped{best}. "
            "Lower optimizer.lr, or check the data"
        )
