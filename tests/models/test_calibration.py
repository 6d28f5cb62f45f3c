"""Temperature scaling and abstention on a deliberately over-confident model: a network trained to
over-fit a few generated images of two overlapping classes, then scored on other images of the
same source (a validation split to fit on, and held-out images to check on)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from src.evaluation.metrics import calibration_error
from src.evaluation.selective import answered_at, answers, threshold_for_precision
from src.models.calibration import fit_temperature, rescale_thresholds, scaled_probabilities
from src.models.tasks import MULTICLASS, MULTILABEL

SIZE = 8
#: Images per split: few to train on (so that the network memorises them), many to check on.
TRAIN, VAL, HELD_OUT = 40, 600, 3000


def generated_images(count: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Two classes of noisy grey images, one a little brighter on its left half, one on its right:
    the noise makes about one image in six ambiguous, so no model should be sure of them all."""
    labels = torch.randint(0, 2, (count,), generator=generator)
    images = torch.randn(count, 1, SIZE, SIZE, generator=generator)
    pattern = torch.zeros(2, 1, SIZE, SIZE)
    pattern[0, ..., : SIZE // 2] = 0.35
    pattern[1, ..., SIZE // 2 :] = 0.35
    return images + pattern[labels], labels


@pytest.fixture(scope="module")
def over_confident() -> dict[str, torch.Tensor]:
    """The logits and labels of the validation and held-out images of a network trained to 100%
    training accuracy and near-zero training loss."""
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    train = generated_images(TRAIN, generator)
    val = generated_images(VAL, generator)
    held_out = generated_images(HELD_OUT, generator)
    net = nn.Sequential(nn.Flatten(), nn.Linear(SIZE * SIZE, 256), nn.ReLU(), nn.Linear(256, 2))
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(300):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(net(train[0]), train[1])
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        assert (net(train[0]).argmax(dim=1) == train[1]).all()  # memorised
        return {
            "val_logits": net(val[0]),
            "val_labels": val[1],
            "logits": net(held_out[0]),
            "labels": held_out[1],
        }


def test_an_over_confident_model_gets_a_temperature_above_1_and_a_lower_error(
    over_confident,
) -> None:
    temperature = fit_temperature(
        over_confident["val_logits"], over_confident["val_labels"], "multiclass"
    )
    assert temperature.shape == (1,) and float(temperature) > 1.5

    logits, labels = over_confident["logits"], over_confident["labels"]
    raw = scaled_probabilities(logits, torch.ones(1), "multiclass")
    calibrated = scaled_probabilities(logits, temperature, "multiclass")
    before, after = calibration_error(raw, labels), calibration_error(calibrated, labels)
    assert before > 0.08  # over-confident: the test could fail
    assert after < before / 4
    assert torch.equal(raw.argmax(dim=1), calibrated.argmax(dim=1))  # the same answers
    loss = nn.functional.nll_loss
    assert loss(calibrated.log(), labels) < loss(raw.log(), labels)


@pytest.mark.parametrize("target", [0.9, 0.95])
def test_a_target_precision_chosen_on_validation_holds_on_held_out_images(
    over_confident, target: float
) -> None:
    temperature = fit_temperature(
        over_confident["val_logits"], over_confident["val_labels"], "multiclass"
    )
    val = scaled_probabilities(over_confident["val_logits"], temperature, "multiclass")
    choice = threshold_for_precision(*answers(val, over_confident["val_labels"]), target)
    assert choice is not None and choice.precision >= target

    held_out = scaled_probabilities(over_confident["logits"], temperature, "multiclass")
    confidence, correct = answers(held_out, over_confident["labels"])
    assert float(correct.double().mean()) < target - 0.04  # answering everything misses it
    result = answered_at(confidence, correct, choice.threshold)
    assert 0.2 < result.coverage < 1  # it abstains, but not on everything
    # The chosen threshold's precision, estimated on the validation images and measured on
    # independent ones: within three standard errors of the two estimates.
    error = math.sqrt(target * (1 - target) * (1 / choice.answered + 1 / result.answered))
    assert result.precision >= target - 3 * error


def test_no_threshold_reaches_a_precision_that_the_most_confident_answer_misses() -> None:
    confidence = torch.tensor([0.99, 0.9, 0.8])
    assert threshold_for_precision(confidence, torch.tensor([False, True, True]), 0.9) is None
    reached = threshold_for_precision(confidence, torch.tensor([True, True, False]), 0.9)
    assert reached is not None and (reached.threshold, reached.answered) == (pytest.approx(0.9), 2)


def test_multi_label_thresholds_move_with_the_temperature_so_each_class_decides_as_before() -> None:
    generator = torch.Generator().manual_seed(3)
    logits = torch.randn(200, 4, generator=generator) * 4
    old, new = torch.ones(4), torch.tensor([0.5, 1.0, 2.0, 4.0])
    thresholds = torch.tensor([0.3, 0.5, 0.7, 0.9])
    moved = rescale_thresholds(thresholds, old, new)
    before = scaled_probabilities(logits, old, MULTILABEL) >= thresholds
    after = scaled_probabilities(logits, new, MULTILABEL) >= moved
    assert torch.equal(before, after)
    assert not torch.allclose(moved, thresholds)  # they did move: the test could fail


def test_a_multi_label_model_gets_one_temperature_per_class() -> None:
    generator = torch.Generator().manual_seed(4)
    targets = torch.randint(0, 2, (500, 2), generator=generator)
    signal = (targets * 2 - 1).float()
    noise = torch.randn(500, 2, generator=generator)
    # Class 0's logits are over-confident (scaled up), class 1's under-confident.
    logits = torch.stack([(signal[:, 0] + noise[:, 0]) * 6, (signal[:, 1] + noise[:, 1]) * 0.3], 1)
    temperature = fit_temperature(logits, targets, MULTILABEL)
    assert temperature.shape == (2,)
    assert float(temperature[0]) > 2 and float(temperature[1]) < 0.5


def test_a_perfectly_separated_validation_split_keeps_temperature_1(caplog) -> None:
    """Where every validation image is on the right side, the loss keeps falling as the
    temperature goes to 0: no temperature is fitted (the fit would stop at an arbitrary T < 1,
    a multi-label threshold near 0), it stays 1 and the user is told why."""
    generator = torch.Generator().manual_seed(5)
    targets = torch.randint(0, 2, (300, 2), generator=generator)
    signal = (targets * 2 - 1).float()
    noise = torch.randn(300, 2, generator=generator)
    # Class 0 separated by a margin; class 1 noisy and over-confident.
    logits = torch.stack(
        [signal[:, 0] * 2 + noise[:, 0].clamp(-1, 1), (signal[:, 1] + noise[:, 1]) * 6], 1
    )
    temperature = fit_temperature(logits, targets, MULTILABEL)
    assert float(temperature[0]) == 1.0 and float(temperature[1]) > 2
    assert "separated perfectly for class indices [0]" in caplog.text
    single = fit_temperature(
        logits[:, :1].repeat(1, 2) * torch.tensor([-1.0, 1.0]), targets[:, 0], MULTICLASS
    )
    assert float(single) == 1.0
