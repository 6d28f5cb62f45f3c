"""After training: score a checkpoint on its validation split or on any labelled folder.

- `evaluation_data_settings`: which images are scored (a whole test folder, or a split).
- `label_mapping`: the folder's classes matched to the checkpoint's by name, or a clear error.
- `summarise`: accuracy, loss, per-class precision / recall / F1 / ROC-AUC / average precision,
  their averages, calibration error and the confusion matrix.
- `score`: probabilities over the images, with and without test-time augmentation (`tta`).
- `write_report`: metrics.json, report.md and the figures (confusion matrix, ROC and
  precision-recall curves, reliability diagram, top-losses gallery).
"""

from src.evaluation.classes import label_mapping
from src.evaluation.data import evaluation_data_settings
from src.evaluation.metrics import summarise
from src.evaluation.report import write_report
from src.evaluation.scoring import score

__all__ = ["evaluation_data_settings", "label_mapping", "score", "summarise", "write_report"]
