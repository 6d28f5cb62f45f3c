"""Temperature scaling (Guo et al., 2017): probabilities of logits / T, with T fitted on the
validation split to minimise its loss. Dividing by T keeps every argmax and every per-class
ranking, so accuracy, mAP and the decisions stay; only how confident the probabilities are
changes.

A single-label model has one temperature; a multi-label model one per class, since each class is
a yes/no question of its own with its own over- or under-confidence.
"""

from __future__ import annotations

import logging

import torch
from torch.nn import functional

from src.models.tasks import MULTILABEL, probabilities

log = logging.getLogger(__name__)

#: Bounds of a fitted temperature: a validation split that the model separates perfectly (or not
#: at all) drives the loss's minimum towards 0 (or infinity).
BOUNDS = (0.01, 100.0)


def temperature_size(task: str, num_classes: int) -> int:
    """How many temperatures a model of `task` has: one, or one per class."""
    return num_classes if task == MULTILABEL else 1


def scaled_probabilities(
    logits: torch.Tensor, temperature: torch.Tensor, task: str
) -> torch.Tensor:
    """The probabilities of `logits` [N, C] at `temperature` ([1], or [C] per class)."""
    return probabilities(logits.float() / temperature.to(logits.device).float(), task)


def calibration_loss(
    logits: torch.Tensor, targets: torch.Tensor, temperature: torch.Tensor, task: str
) -> torch.Tensor:
    """The mean validation loss at `temperature`: cross-entropy, or for a multi-label model each
    class's binary cross-entropy, summed over the classes (each class's temperature minimises
    its own)."""
    scaled = logits / temperature
    if task == MULTILABEL:
        losses = functional.binary_cross_entropy_with_logits(
            scaled, targets.to(scaled.dtype), reduction="none"
        )
        return losses.mean(dim=0).sum()
    return functional.cross_entropy(scaled, targets)


def fit_temperature(logits: torch.Tensor, targets: torch.Tensor, task: str) -> torch.Tensor:
    """The temperature ([1], or [C] for a multi-label model) that minimises the loss of `logits`
    [N, C] against `targets` ([N] class indices, or [N, C] multi-hot): L-BFGS on log T (so that
    T stays positive), in float64 on the CPU, within `BOUNDS`."""
    logits = logits.detach().double().cpu()
    targets = targets.detach().cpu()
    size = temperature_size(task, logits.shape[1])
    if len(logits) == 0:
        return torch.ones(size)
    separated = perfectly_separated(logits, targets, task)
    if bool(separated.any()):
        # No best temperature exists (the loss keeps falling as T goes to 0): the fit would stop
        # at an arbitrary T < 1, sharpening probabilities towards 0 and 1 on no evidence.
        log.warning(
            "The validation split is separated perfectly%s: no temperature can be fitted there, "
            "so it stays 1; calibrate on a larger or harder validation split",
            f" for class indices {separated.nonzero().flatten().tolist()}" if size > 1 else "",
        )
        if bool(separated.all()):
            return torch.ones(size)
    log_t = torch.zeros(size, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS(
        [log_t], lr=1.0, max_iter=200, tolerance_grad=1e-9, line_search_fn="strong_wolfe"
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = calibration_loss(logits, targets, log_t.exp(), task)
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    fitted = log_t.detach().exp()
    if not bool(torch.isfinite(fitted).all()):
        fitted = torch.nan_to_num(fitted, nan=1.0, posinf=BOUNDS[1], neginf=BOUNDS[0])
    low, high = BOUNDS
    fitted = torch.where(separated, torch.ones_like(fitted), fitted)
    if bool((fitted >= high).any()):
        log.warning(
            "The fitted temperature reached its upper bound %s: the model's scores say little "
            "about the validation split's labels",
            high,
        )
    return fitted.clamp(low, high).float()


def perfectly_separated(logits: torch.Tensor, targets: torch.Tensor, task: str) -> torch.Tensor:
    """Per temperature, whether every image is already on the right side (its class has the
    largest logit; multi-label: each logit's sign is its label): then the loss has no minimum."""
    if task == MULTILABEL:
        return ((logits > 0) == targets.bool()).all(dim=0)
    return (logits.argmax(dim=1) == targets).all().reshape(1)


def rescale_thresholds(
    thresholds: torch.Tensor, old: torch.Tensor, new: torch.Tensor
) -> torch.Tensor:
    """Multi-label decision thresholds on probabilities at temperature `old`, moved to the same
    logits at temperature `new`: every class decides exactly as before (0 and 1 stay)."""
    logit = torch.logit(thresholds.double())
    ratio = old.to(thresholds.device).double() / new.to(thresholds.device).double()
    return torch.sigmoid(logit * ratio).to(thresholds.dtype)


def temperature_value(temperature: torch.Tensor, task: str) -> float | list[float]:
    """As written to JSON: one number, or a list of one per class for a multi-label model."""
    values = [float(value) for value in temperature.flatten()]
    return values if task == MULTILABEL else values[0]
