"""The training loss of each task, with class imbalance handled in it: class weights
(`loss.class_weights`: inverse class frequency, or by class name) and focal loss (`loss=focal`,
`loss.gamma`); for a multi-label task the weights are each class's `pos_weight`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional

from src.models.tasks import MULTILABEL
from src.utils.errors import UserError, require_number

#: `loss.class_weights` that computes the weights from the training split.
AUTO = "auto"


def class_weights(
    setting: object, class_names: Sequence[str], counts: Sequence[int], images: int, task: str
) -> list[float] | None:
    """The weights `loss.class_weights` asks for, one per class, or None (all weigh the same).

    - `auto`, one label per image: inverse class frequency, normalised to a mean of 1;
    - `auto`, several labels per image: each class's negatives over its positives (binary
      cross-entropy's `pos_weight`);
    - a mapping class name -> weight: those (classes it leaves out weigh 1).
    """
    if setting is None:
        return None
    if setting == AUTO:
        if task == MULTILABEL:
            return [(images - count) / count for count in counts]
        inverse = [1.0 / count for count in counts]
        mean = sum(inverse) / len(inverse)
        return [value / mean for value in inverse]
    if not isinstance(setting, Mapping):
        raise UserError(
            f"loss.class_weights={setting!r} must be auto, null, or weights by class name "
            "(e.g. loss.class_weights={cat: 3.0})"
        )
    unknown = [name for name in setting if name not in class_names]
    if unknown:
        raise UserError(
            f"loss.class_weights names {unknown}, which are not classes of the data "
            f"({', '.join(class_names)})"
        )
    for name, value in setting.items():
        require_number(value, f"loss.class_weights.{name}", 0.0)
    return [float(setting.get(name, 1.0)) for name in class_names]


class ClassificationLoss(nn.Module):
    """The task's loss of logits against targets: class indices [B] or class probabilities
    [B, C] (MixUp / CutMix) with a softmax, multi-hot [B, C] with a sigmoid per class.

    `weights`: each class's weight (multi-label: its `pos_weight`), or None; `gamma` > 0 makes it
    the focal loss, which down-weights the images the model already gets right by
    (1 - p_true) ** gamma; `label_smoothing` moves the targets towards uniform (multi-label:
    towards 1/2). With gamma 0 and no weights it is plain cross-entropy.
    """

    def __init__(
        self,
        task: str,
        weights: Sequence[float] | None = None,
        label_smoothing: float = 0.0,
        gamma: float = 0.0,
    ) -> None:
        super().__init__()
        self.task = task
        self.label_smoothing = float(label_smoothing)
        self.gamma = float(gamma)
        weight = None if weights is None else torch.tensor(list(weights), dtype=torch.float32)
        # Not in the state dict: the checkpoint's hyper-parameters hold the weights.
        self.register_buffer("weights", weight, persistent=False)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if self.task == MULTILABEL:
            return self._multilabel(logits, targets)
        weights = None if self.weights is None else self.weights.to(logits.dtype)
        if not self.gamma:
            return functional.cross_entropy(
                logits, targets, weight=weights, label_smoothing=self.label_smoothing
            )
        losses = functional.cross_entropy(
            logits, targets, reduction="none", label_smoothing=self.label_smoothing
        )
        focal = (1 - torch.exp(-losses)) ** self.gamma * losses
        if weights is None:
            return focal.mean()
        per_image = weights[targets] if targets.dim() == 1 else targets.to(weights.dtype) @ weights
        return (focal * per_image).sum() / per_image.sum()

    def _multilabel(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        targets = targets.to(logits.dtype) * (1 - self.label_smoothing) + self.label_smoothing / 2
        weights = None if self.weights is None else self.weights.to(logits.dtype)
        losses = functional.binary_cross_entropy_with_logits(
            logits, targets, pos_weight=weights, reduction="none"
        )
        if self.gamma:
            probabilities = logits.sigmoid()
            right = probabilities * targets + (1 - probabilities) * (1 - targets)
            losses = (1 - right) ** self.gamma * losses
        return losses.mean()


def build_loss(
    task: str, settings: Mapping[str, Any] | None, label_smoothing: float
) -> ClassificationLoss:
    """The `loss` config group's loss (`cross_entropy` or `focal`), its class weights resolved
    already (a list, or null)."""
    settings = dict(settings or {})
    name = settings.get("name", "cross_entropy")
    if name not in ("cross_entropy", "focal"):
        raise UserError(f"loss.name={name!r} is not a loss; choose cross_entropy or focal")
    gamma = settings.get("gamma", 2.0) if name == "focal" else 0.0
    require_number(gamma, "loss.gamma", 0.0)
    return ClassificationLoss(task, settings.get("class_weights"), label_smoothing, gamma)
