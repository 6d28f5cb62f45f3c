"""Lightning callbacks of every training run (see conf/callbacks/default.yaml).

- `checkpoints`: atomic checkpoint writes, the best checkpoint carried over on resume, a
  checkpoint on SIGTERM, and the run-dir rules (what to resume from, no run overwriting another).
- `StopOnNonFiniteLoss`: stop at the first NaN or infinite loss.
- `RunSummary`: `<run dir>/summary.json`, the record that sweep reports read.
- `TensorBoardFigures`: augmented images, predictions and the confusion matrix in TensorBoard.
"""

from src.callbacks.checkpoints import (
    AtomicCheckpointIO,
    CarryOverModelCheckpoint,
    CheckpointOnSigterm,
    CheckpointWriteError,
    checkpoint_to_resume,
)
from src.callbacks.nonfinite_loss import NonFiniteLossError, StopOnNonFiniteLoss
from src.callbacks.run_summary import SUMMARY_FILE, RunSummary, write_summary
from src.callbacks.visualization import TensorBoardFigures

__all__ = [
    "SUMMARY_FILE",
    "AtomicCheckpointIO",
    "CarryOverModelCheckpoint",
    "CheckpointOnSigterm",
    "CheckpointWriteError",
    "NonFiniteLossError",
    "RunSummary",
    "StopOnNonFiniteLoss",
    "TensorBoardFigures",
    "checkpoint_to_resume",
    "write_summary",
]
