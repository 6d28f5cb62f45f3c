"""Time limits and pre-emption of submitit jobs (`hydra/launcher=slurm`, `submitit_local`): every
process saves a checkpoint at the same step, then submitit requeues the job.

submitit signals a job (USR2, or `SUBMITIT_PREEMPT_SIGNAL`) before its time limit or a
pre-emption. Its own handler, on global rank 0 only, requeues at once, in the middle of a step and
without a checkpoint, while the other ranks wait. This callback takes the signal over in each
process where submitit's handler is installed: the process only notes it. At the next point where
the processes agree anyway (`StopTogether`: the logging interval, validation's start, the epoch's
end), all of them take Lightning's SIGTERM path together: the batch ends, `CheckpointOnSigterm`
saves `last.ckpt` collectively, and `train` then hands over to submitit's handler, which pickles
the job and requeues it. The requeued job resumes from that checkpoint (`requeue`).
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable
from types import FrameType
from typing import Any

import lightning as L

from src.callbacks.stop_together import StopTogether

log = logging.getLogger(__name__)

SignalHandler = Callable[[int, FrameType | None], Any]


def submitit_preemption_handler() -> tuple[signal.Signals, SignalHandler] | None:
    """submitit's pre-emption signal and the handler it installed in this process; None outside
    a submitit job (or in a process it did not start, such as Lightning's extra DDP processes)."""
    if not os.environ.get("SUBMITIT_EXECUTOR"):
        return None
    from submitit.core.job_environment import JobEnvironment, SignalHandler

    signum = JobEnvironment._usr_sig()
    handler = signal.getsignal(signum)
    if not isinstance(getattr(handler, "__self__", None), SignalHandler):
        return None
    return signum, handler


class RequeueOnPreemption(StopTogether):
    """Under submitit, its pre-emption signal stops every process at the same step with a
    checkpoint (Lightning's SIGTERM path), and `requeue` then lets submitit requeue the job.

    The signal comes `hydra.launcher.signal_delay_s` (120 s) before the end: the stop waits for
    the next check point, at most `trainer.log_every_n_steps` steps, plus the checkpoint's write.
    """

    def __init__(self) -> None:
        self._submitit: tuple[signal.Signals, SignalHandler] | None = None
        self._signalled = False
        self.preempted = False

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._submitit = submitit_preemption_handler() if stage == "fit" else None
        if self._submitit is not None:
            signal.signal(self._submitit[0], self._note_signal)

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self._submitit is not None:
            signal.signal(*self._submitit)  # after the fit, submitit's own handler again

    def _note_signal(self, signum: int, frame: FrameType | None) -> None:
        log.warning(
            "Received %s (time limit or pre-emption): stopping with a checkpoint at the next "
            "check point, then requeueing the job",
            signal.Signals(signum).name,
        )
        self._signalled = True

    def finding(self, trainer: L.Trainer) -> str | None:
        return "pre-empted" if self._signalled else None

    def stop(self, trainer: L.Trainer, finding: str | None) -> None:
        # Lightning's own SIGTERM path, entered by every process at this same point: the batch
        # ends, then SIGTERMException (CheckpointOnSigterm saves last.ckpt collectively).
        trainer._signal_connector.received_sigterm = True
        self.preempted = True

    def requeue(self) -> None:
        """After the checkpoint: submitit's handler pickles the job, requeues it and exits (on
        global rank 0; in other processes it returns)."""
        if self._submitit is not None:
            signum, handler = self._submitit
            handler(signum, None)


def preemption_of(trainer: L.Trainer) -> RequeueOnPreemption | None:
    """The trainer's `RequeueOnPreemption` callback when it stopped the fit, else None."""
    for callback in trainer.callbacks:
        if isinstance(callback, RequeueOnPreemption) and callback.preempted:
            return callback
    return None
