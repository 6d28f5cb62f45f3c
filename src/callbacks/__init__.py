"""Lightning callbacks of every training run (see conf/callbacks/default.yaml).

Import from the modules; the packages re-export nothing, so importing one part never loads
the rest (the ONNX prediction path runs without Lightning).

- `checkpoints`: atomic checkpoint writes, the best checkpoint carried over on resume, a
  checkpoint on SIGTERM, and the run-dir rules (what to resume from, no run overwriting another).
- `nonfinite_loss`: `StopOnNonFiniteLoss`, stop at the first NaN or infinite loss.
- `run_summary`: `RunSummary`, `<run dir>/summary.json`, the record that sweep reports read.
- `visualization`: `TensorBoardFigures`, augmented images, predictions and the confusion matrix.
"""
