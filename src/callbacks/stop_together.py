"""A base for conditions that one process meets and that must stop every process of the run."""

from __future__ import annotations

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.trainer.states import TrainerFn


class StopTogether(Callback):
    """Reads a condition each process meets on its own (`finding`) at points every process
    reaches: the logging interval (`trainer.log_every_n_steps`, when Lightning reads the metrics
    anyway), the start of validation and the end of each training epoch. When any process met
    it, the decision, reduced over the processes, stops them all (`error`); raising in one
    would leave the others waiting in the next all-reduce until the process group times out.
    Reading only at these points keeps the training step free of host synchronisation.
    """

    def finding(self, trainer: L.Trainer) -> str | None:
        """What this process met, or None."""
        raise NotImplementedError

    def error(self, trainer: L.Trainer, finding: str | None) -> Exception:
        """The error that stops the run; `finding` is None when another process met it."""
        raise NotImplementedError

    def stop(self, trainer: L.Trainer, finding: str | None) -> None:
        """What every process does, at the same point, once any of them met the condition."""
        raise self.error(trainer, finding)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step % trainer.log_every_n_steps == 0:
            self.stop_if_any_process_met_it(trainer)

    def on_validation_start(self, trainer: L.Trainer, pl_module) -> None:
        if trainer.state.fn == TrainerFn.FITTING:
            self.stop_if_any_process_met_it(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module) -> None:
        self.stop_if_any_process_met_it(trainer)

    def stop_if_any_process_met_it(self, trainer: L.Trainer) -> None:
        finding = self.finding(trainer)
        if trainer.strategy.reduce_boolean_decision(finding is not None, all=False):
            self.stop(trainer, finding)
