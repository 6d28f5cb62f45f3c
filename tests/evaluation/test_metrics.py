"""The evaluation's numbers against values worked out by hand, or by scikit-learn, on five
images of three classes: a metric computed on the wrong input (shifted probabilities, predictions
for probabilities, another average) shows as a wrong number."""

from __future__ import annotations

import math

import pytest
import torch
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score
from sklearn.preprocessing import label_binarize

from src.evaluation.metrics import summarise

CLASSES = ["a", "b", "c"]
#: Each row sums to 1; the comments give (prediction, confidence, right or wrong).
PROBABILITIES = [
    [0.95, 0.03, 0.02],  # a 0.95 right
    [0.62, 0.30, 0.08],  # a 0.62 wrong
    [0.15, 0.75, 0.10],  # b 0.75 right
    [0.10, 0.15, 0.75],  # c 0.75 wrong
    [0.20, 0.35, 0.45],  # c 0.45 right
]
LABELS = [0, 1, 1, 0, 2]


def summary(extra_classes: int = 0) -> dict:
    """The summary of the five images, with `extra_classes` more classes that none of them is."""
    probabilities = torch.tensor([row + [0.0] * extra_classes for row in PROBABILITIES])
    names = CLASSES + [f"absent{k}" for k in range(extra_classes)]
    return summarise(probabilities, torch.tensor(LABELS), names)


def test_accuracy_loss_confusion_and_calibration_by_hand() -> None:
    metrics = summary()
    assert metrics["accuracy"] == pytest.approx(3 / 5)
    picked = [0.95, 0.30, 0.75, 0.10, 0.45]  # each image's probability of its true class
    assert metrics["loss"] == pytest.approx(-sum(map(math.log, picked)) / 5, rel=1e-6)
    assert metrics["confusion_matrix"] == [[1, 0, 1], [1, 1, 0], [0, 0, 1]]
    # 15 equal confidence bins: 0.95, 0.62 and 0.45 alone in theirs (accuracy 1, 0, 1), both
    # 0.75 in one (accuracy 1/2); the gaps weighted by each bin's share of the images.
    gaps = [abs(1 - 0.95), abs(0 - 0.62), 2 * abs(0.5 - 0.75), abs(1 - 0.45)]
    assert metrics["expected_calibration_error"] == pytest.approx(sum(gaps) / 5, abs=1e-6)
    assert metrics["expected_calibration_error"] == pytest.approx(0.344, abs=1e-6)


def test_per_class_scores_and_averages_match_scikit_learn() -> None:
    metrics = summary()
    probabilities, labels = PROBABILITIES, LABELS
    predictions = [row.index(max(row)) for row in probabilities]
    one_hot = label_binarize(labels, classes=[0, 1, 2])
    columns = [[row[k] for row in probabilities] for k in range(3)]
    expected = {
        "f1": f1_score(labels, predictions, average=None).tolist(),
        "roc_auc": [roc_auc_score(one_hot[:, k], columns[k]) for k in range(3)],
        "average_precision": [average_precision_score(one_hot[:, k], columns[k]) for k in range(3)],
    }
    assert expected["f1"] == pytest.approx([1 / 2, 2 / 3, 2 / 3])  # worked by hand too
    assert expected["roc_auc"][0] == pytest.approx(3 / 6)  # a: 0.95 above all three, 0.10 none
    for metric, values in expected.items():
        assert [metrics["per_class"][name][metric] for name in CLASSES] == pytest.approx(values)
        assert metrics[f"macro_{metric}"] == pytest.approx(sum(values) / 3)
        support = [2, 2, 1]
        weighted = sum(v * s for v, s in zip(values, support, strict=True)) / 5
        assert metrics[f"weighted_{metric}"] == pytest.approx(weighted)
    assert metrics["macro_roc_auc"] == pytest.approx(
        roc_auc_score(labels, probabilities, multi_class="ovr", average="macro")
    )


def test_a_class_without_images_is_left_out_of_the_averages() -> None:
    three, four = summary(), summary(extra_classes=1)
    absent = four["per_class"]["absent0"]
    assert absent["support"] == 0
    assert all(value is None for key, value in absent.items() if key != "support")
    for key, value in three.items():
        if key.startswith(("macro_", "weighted_")) or key == "expected_calibration_error":
            assert four[key] == pytest.approx(value), key
