"""Every way to ask predict for abstention wrongly stops with one line that says what to do."""

from __future__ import annotations

import pytest

from src.models.tasks import MULTILABEL
from src.serving.abstention import abstention_threshold
from src.serving.classifiers import CheckpointClassifier, OnnxClassifier
from src.utils.errors import UserError
from tests.helpers import build_classifier


@pytest.fixture(scope="module")
def classifier() -> CheckpointClassifier:
    """A checkpoint's model without data settings (as one loaded from a bare state dict)."""
    return CheckpointClassifier.of(build_classifier(image_size=32, seed=0).eval(), None)


def test_no_abstention_unless_asked(classifier) -> None:
    assert abstention_threshold(classifier, None, None) is None
    assert abstention_threshold(classifier, 0.9, None) == 0.9


@pytest.mark.parametrize(
    ("min_confidence", "target_precision", "message"),
    [
        (0.9, 0.95, "not both"),
        (1.5, None, "min_confidence"),
        (None, -0.1, "target_precision"),
        (None, 0.95, "records no data settings; use min_confidence"),
    ],
)
def test_a_wrong_request_is_refused(
    classifier, min_confidence: float | None, target_precision: float | None, message: str
) -> None:
    with pytest.raises(UserError, match=message):
        abstention_threshold(classifier, min_confidence, target_precision)


def test_a_multi_label_model_decides_at_its_thresholds_instead() -> None:
    model = build_classifier(image_size=32, seed=0, task=MULTILABEL).eval()
    with pytest.raises(UserError, match="single-label models"):
        abstention_threshold(CheckpointClassifier.of(model, None), 0.9, None)


def exported(validation: dict | None) -> OnnxClassifier:
    """An exported model as predict sees it: its model.json's thresholds and validation answers
    (the ONNX session is not needed to choose a threshold)."""
    model = OnnxClassifier.__new__(OnnxClassifier)
    model.thresholds, model.validation = None, validation
    return model


def test_a_model_json_without_validation_answers_cannot_choose_a_precision() -> None:
    with pytest.raises(UserError, match=r"this model\.json has none: export it again"):
        abstention_threshold(exported(None), None, 0.95)


def test_a_precision_not_reached_at_any_confidence_says_so() -> None:
    answers = {"confidence": [0.99, 0.9, 0.6], "correct": [False, True, True], "data": "pets"}
    with pytest.raises(UserError, match=r"target_precision=0.9 is not reached .* 3 validation"):
        abstention_threshold(exported(answers), None, 0.9)
    chosen = abstention_threshold(exported(answers), None, 0.6)  # all three: 2 of 3 right
    assert chosen.threshold <= 0.6 and chosen.answered == 3
