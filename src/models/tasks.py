"""The two tasks: one class per image (`task=multiclass`: softmax, cross-entropy, accuracy) or
any number (`task=multilabel`: a sigmoid per class, binary cross-entropy, mean average
precision, a decision threshold per class)."""

from __future__ import annotations

import torch

from src.utils.errors import UserError

MULTICLASS, MULTILABEL = "multiclass", "multilabel"
#: The validation metric each task's best checkpoint, early stopping and sweeps follow.
MONITORED = {MULTICLASS: "val/acc", MULTILABEL: "val/map"}


def check_task(task: object) -> None:
    if task not in MONITORED:
        raise UserError(
            f"task={task!r} is not a task; choose multiclass (one class per image) or "
            "multilabel (any number of classes per image)"
        )


def probabilities(logits: torch.Tensor, task: str) -> torch.Tensor:
    """Class probabilities: a softmax over the classes, or a sigmoid per class."""
    logits = logits.float()
    return logits.sigmoid() if task == MULTILABEL else logits.softmax(dim=1)


def best_f1_thresholds(
    precision: torch.Tensor, recall: torch.Tensor, thresholds: torch.Tensor
) -> torch.Tensor:
    """Per class, the threshold of the highest F1 on a binned precision-recall curve
    ([C, T + 1] precision and recall at the T `thresholds`, torchmetrics' layout); computed on
    the device, without a host read."""
    precision = precision.nan_to_num(0.0)  # no prediction at a threshold: no precision
    f1 = 2 * precision * recall / (precision + recall).clamp(min=1e-12)
    best = f1[:, : len(thresholds)].argmax(dim=1)  # the lowest threshold of the best F1
    return thresholds[best]
