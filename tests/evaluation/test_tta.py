"""Test-time augmentation averages the probabilities of the views of each image."""

from __future__ import annotations

import pytest
import torch

from src.evaluation.scoring import ViewLogits, view_probabilities
from src.evaluation.tta import VIEWS, tta_views
from src.utils.errors import UserError
from tests.helpers import build_classifier


def test_flip_averages_each_image_and_its_mirror() -> None:
    model = build_classifier(image_size=32, seed=0).eval()
    images = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8)
    with torch.inference_mode():
        plain = model(images).softmax(dim=1)
        mirrored = model(images.flip(-1)).softmax(dim=1)
        logits = ViewLogits(model, tta_views("flip")).predict_step((images,), 0)
    averaged = view_probabilities(logits, model.temperature, model.task)
    assert torch.allclose(averaged, (plain + mirrored) / 2)
    assert not torch.allclose(plain, mirrored)  # the views differ: the test could fail
    with torch.inference_mode():
        logits = ViewLogits(model, VIEWS["none"]).predict_step((images,), 0)
    single = view_probabilities(logits, model.temperature, model.task)
    assert torch.allclose(single, plain)


def test_an_unknown_option_names_the_choices() -> None:
    with pytest.raises(UserError, match=r"tta='rotate'.*none, flip"):
        tta_views("rotate")
