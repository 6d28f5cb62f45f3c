"""When predict abstains: below a confidence given (`min_confidence`), or below the one that
reaches a precision on the validation split (`target_precision`). The validation answers come
from the checkpoint's own validation split, or for an exported model from its model.json."""

from __future__ import annotations

import logging
from typing import Any

import torch

from src.data.images import DEFAULT_MAX_PIXELS
from src.evaluation.selective import Abstention, threshold_for_precision
from src.evaluation.tta import VIEWS, View
from src.serving.classifiers import CheckpointClassifier, Classifier, OnnxClassifier
from src.serving.prediction import predict_files
from src.utils.errors import UserError, require_number

log = logging.getLogger(__name__)


def validation_answers(
    classifier: CheckpointClassifier,
    views: tuple[View, ...] = VIEWS["none"],
    batch_size: int = 32,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    num_workers: int = 0,
) -> dict[str, Any]:
    """Each image of the checkpoint's validation split as predict sees it (the same decoding,
    views and calibrated probabilities): `confidence` (its top probability) and `correct`
    (whether that class is its label), with the split's `data` and `images`."""
    from src.config.instantiation import build_from_config  # Lightning only on this path
    from src.evaluation.classes import label_mapping
    from src.evaluation.data import evaluation_data_settings

    if classifier.trained_on is None:
        raise UserError(
            "target_precision is chosen on the checkpoint's validation split, and this checkpoint "
            "records no data settings; use min_confidence=<probability> instead"
        )
    settings = evaluation_data_settings({}, classifier.trained_on, split=False)
    datamodule = build_from_config(
        settings,
        image_size=classifier.image_size,
        crop_pct=classifier.crop_pct,
        file_list_dir=None,
    )
    datamodule.prepare_data()
    datamodule.setup("validate")
    to_model = label_mapping(datamodule.class_names, classifier.class_names, subset=False)
    samples = datamodule.val_samples
    predictions = predict_files(
        [sample.path for sample in samples], classifier, batch_size, max_pixels, views, num_workers
    )
    answered = [(p, s) for p, s in zip(predictions, samples, strict=True) if not p.error]
    return {
        "data": str(datamodule.root),
        "images": len(answered),
        "confidence": [p.probability for p, _ in answered],
        "correct": [
            int(max(range(len(p.probabilities)), key=p.probabilities.__getitem__))
            == to_model[s.label]
            for p, s in answered
        ],
    }


def abstention_threshold(
    classifier: Classifier,
    min_confidence: float | None,
    target_precision: float | None,
    views: tuple[View, ...] = VIEWS["none"],
    **reading: Any,
) -> Abstention | float | None:
    """The confidence below which predict answers `uncertain`: `min_confidence` as given, or the
    `Abstention` chosen for `target_precision` on the validation split; None for neither.
    `reading` (batch_size, max_pixels, num_workers) reads the checkpoint's validation images."""
    if min_confidence is None and target_precision is None:
        return None
    if min_confidence is not None and target_precision is not None:
        raise UserError("give min_confidence or target_precision, not both")
    if classifier.thresholds is not None:
        raise UserError(
            "min_confidence and target_precision are for single-label models; a multi-label "
            "model decides each class at its threshold (model.json thresholds, "
            "docs/after_training.md)"
        )
    if min_confidence is not None:
        require_number(min_confidence, "min_confidence", 0.0, 1.0)
        return float(min_confidence)
    require_number(target_precision, "target_precision", 0.0, 1.0)
    answers = validation_of(classifier, views, **reading)
    confidence = torch.tensor(answers["confidence"], dtype=torch.float64)
    correct = torch.tensor(answers["correct"], dtype=torch.bool)
    choice = threshold_for_precision(confidence, correct, float(target_precision))
    if choice is None:
        accuracy = float(correct.double().mean()) if len(correct) else float("nan")
        raise UserError(
            f"target_precision={target_precision} is not reached at any confidence on the "
            f"{len(correct)} validation images of {answers['data']} (accuracy {accuracy:.3f}, "
            "and the most confident ones include mistakes); ask for a lower precision"
        )
    log.info(
        "target_precision=%s: answering at confidence >= %.4f gave precision %.4f on the "
        "validation split (%s), coverage %.3f (%d of %d images answered)",
        target_precision,
        choice.threshold,
        choice.precision,
        answers["data"],
        choice.coverage,
        choice.answered,
        choice.images,
    )
    return choice


def validation_of(
    classifier: Classifier, views: tuple[View, ...], **reading: Any
) -> dict[str, Any]:
    """The validation answers of a checkpoint (computed now) or of an exported model (its
    model.json's, computed at export without test-time augmentation)."""
    if isinstance(classifier, CheckpointClassifier):
        return validation_answers(classifier, views, **reading)
    answers = classifier.validation if isinstance(classifier, OnnxClassifier) else None
    if not answers:
        raise UserError(
            "target_precision needs the validation answers that python -m src.export writes into "
            "model.json where the checkpoint's data is readable; this model.json has none: "
            "export it again there, or use min_confidence=<probability>"
        )
    if len(views) > 1:
        raise UserError(
            "model.json's validation answers are without test-time augmentation: use tta=none "
            "with target_precision, or ckpt_path= (which reads the validation split with it)"
        )
    return answers
