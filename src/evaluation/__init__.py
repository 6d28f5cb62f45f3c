"""After training: score a checkpoint on its validation split or on any labelled folder.

- `data`: which images are scored (a whole test folder, or a split).
- `classes`: the folder's classes matched to the checkpoint's by name, or a clear error.
- `metrics`: accuracy, loss, per-class precision / recall / F1 / ROC-AUC / average precision,
  their averages, calibration error and the confusion matrix.
- `scoring`, `tta`: probabilities over the images, with and without test-time augmentation.
- `attribution`: Grad-CAM, where the network looks.
- `report`, `figures`: metrics.json, report.md and the figures (confusion matrix, ROC and
  precision-recall curves, reliability diagram, top-losses gallery).
"""
