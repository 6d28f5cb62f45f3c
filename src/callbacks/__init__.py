"""Lightning callbacks of every training run (see conf/callbacks/default.yaml).

Import from the modules; the packages re-export nothing, so importing one part never loads
the rest (the ONNX prediction path runs without Lightning).

- `checkpoints`: atomic checkpoint writes, the best checkpoint carried over on resume, a
  checkpoint on SIGTERM, and the run-dir rules (what to resume from, no run overwriting another).
- `stop_together`: `StopTogether`, a condition one process meets stops every process.
- `nonfinite_loss`: `StopOnNonFiniteLoss`, stop at the first NaN or infinite loss.
- `unreadable_files`: `StopOnUnreadableFiles`, stop past `data.max_read_failures`.
- `device_failure`: `StopOnDeviceFailure`, stop when a device fails while decoding on it.
- `requeue`: a requeued SLURM or submitit job resumes from its own checkpoints.
- `preemption`: `RequeueOnPreemption`, submitit's time-limit signal: a checkpoint, then requeue.
- `ema`: `EMAWeightAveraging`, Lightning's EMA with an update that never waits for the device.
- `evaluation_report`: `BestCheckpointReport`, the best checkpoint's report when the fit ends.
- `run_summary`: `RunSummary`, `<run dir>/summary.json`, the record that sweep reports read.
- `visualization`: `TensorBoardFigures`, augmented images, predictions and the confusion matrix.
"""
