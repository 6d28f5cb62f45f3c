"""Answers that abstain: answer only the images whose confidence (top probability) reaches a
threshold. The risk-coverage curve is the accuracy of the answered images against the share
answered; a target precision picks the lowest threshold whose answered images on the validation
split reach it."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch

#: Coverages (shares answered) at which metrics.json records the risk-coverage curve.
COVERAGES = tuple(round(0.05 * step, 2) for step in range(1, 21))


@dataclass(frozen=True)
class Abstention:
    """Answer at confidence >= `threshold`: on the images it was chosen on, the answered ones
    (`answered` of `images`, the share `coverage`) were right at `precision`."""

    threshold: float
    precision: float
    coverage: float
    answered: int
    images: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def answers(
    probabilities: torch.Tensor, targets: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(confidence, correct) of single-label predictions: the top probability, and whether its
    class is the true one."""
    confidence, predicted = probabilities.max(dim=1)
    return confidence, predicted == targets


def selective_curve(confidence: torch.Tensor, correct: torch.Tensor) -> dict[str, torch.Tensor]:
    """At each distinct confidence, from the highest: `threshold` (answer at or above it), the
    `answered` images, their `precision` (accuracy) and `coverage` (share answered)."""
    order = torch.argsort(confidence, descending=True, stable=True)
    ranked = confidence[order].double()
    right = correct[order].double().cumsum(dim=0)
    last_of_value = torch.ones(len(ranked), dtype=torch.bool)
    last_of_value[:-1] = ranked[:-1] != ranked[1:]  # ties are answered together
    ends = torch.nonzero(last_of_value).flatten()
    answered = ends + 1
    return {
        "threshold": ranked[ends],
        "answered": answered,
        "precision": right[ends] / answered,
        "coverage": answered.double() / max(1, len(ranked)),
    }


def threshold_for_precision(
    confidence: torch.Tensor, correct: torch.Tensor, target: float
) -> Abstention | None:
    """The lowest threshold (the most images answered) whose answered images reach precision
    `target`; None when no threshold does."""
    curve = selective_curve(confidence, correct)
    reaching = torch.nonzero(curve["precision"] >= target - 1e-12).flatten()
    if len(reaching) == 0:
        return None
    best = int(reaching[-1])
    return Abstention(
        threshold=float(curve["threshold"][best]),
        precision=float(curve["precision"][best]),
        coverage=float(curve["coverage"][best]),
        answered=int(curve["answered"][best]),
        images=len(confidence),
    )


def answered_at(confidence: torch.Tensor, correct: torch.Tensor, threshold: float) -> Abstention:
    """What answering at confidence >= `threshold` gives on these images."""
    chosen = confidence.double() >= threshold
    answered = int(chosen.sum())
    return Abstention(
        threshold=threshold,
        precision=float(correct[chosen].double().mean()) if answered else math.nan,
        coverage=answered / max(1, len(confidence)),
        answered=answered,
        images=len(confidence),
    )


def risk_coverage(confidence: torch.Tensor, correct: torch.Tensor) -> list[dict[str, float]]:
    """The risk-coverage curve at `COVERAGES`: for each share of the images, answered from the
    most confident, their accuracy and the confidence of the last one answered."""
    if len(confidence) == 0:
        return []
    order = torch.argsort(confidence, descending=True, stable=True)
    ranked, right = confidence[order], correct[order].double().cumsum(dim=0)
    rows = []
    for coverage in COVERAGES:
        count = max(1, math.ceil(coverage * len(ranked) - 1e-9))
        rows.append(
            {
                "coverage": coverage,
                "accuracy": float(right[count - 1] / count),
                "threshold": float(ranked[count - 1]),
            }
        )
    return rows
