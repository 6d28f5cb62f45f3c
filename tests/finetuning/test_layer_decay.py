"""Layer-wise learning-rate decay (`optimizer.layer_decay`): the head at `optimizer.lr`, each
block below it `layer_decay` times slower than the one above, with gradual unfreezing (each
newly unfrozen block at its own rate), discriminative rates and one-cycle schedules."""

from __future__ import annotations

import pytest
import torch

from src.finetuning.optimization import add_group
from src.utils.errors import UserError
from tests.helpers import build_classifier, fit_briefly, logged_metrics

#: ResNet18's blocks: conv1+bn1, layer1, layer2, layer3, layer4 (five), then the head.
RATES = {"head": 1.0, "layer4": 0.5, "layer3": 0.25, "layer2": 0.125, "layer1": 0.0625}


def test_each_block_trains_at_its_decayed_rate() -> None:
    model = build_classifier(None, layer_decay=0.5, lr=1.0, image_size=32)
    optimizer = model.configure_optimizers()[0][0]
    rates = {group["name"]: group["lr"] for group in optimizer.param_groups}
    assert rates == {**RATES, "conv1+bn1": 0.03125}
    layer3 = {id(p) for p in model.net.layer3.parameters()}
    (group,) = [g for g in optimizer.param_groups if g["name"] == "layer3"]
    assert {id(p) for p in group["params"]} == layer3


def test_it_multiplies_the_backbone_multiplier() -> None:
    model = build_classifier(None, layer_decay=0.5, backbone_lr_mult=0.1, lr=1.0, image_size=32)
    rates = {g["name"]: g["lr"] for g in model.configure_optimizers()[0][0].param_groups}
    assert rates["head"] == 1.0 and rates["layer4"] == pytest.approx(0.05)


def test_a_block_unfrozen_later_joins_at_its_own_rate() -> None:
    """Epoch 1 unfreezes layer4 (one block: a group named after the step); epoch 2 the rest,
    one group per block, each at its rate relative to the head's rate at that moment."""
    model = build_classifier(
        [], unfreeze_at={"layer4": 1, "rest": 2}, layer_decay=0.5, lr=1.0, image_size=32
    )
    optimizer = model.configure_optimizers()[0][0]
    assert [g["name"] for g in optimizer.param_groups] == ["head"]
    optimizer.param_groups[0]["lr"] = 0.2  # the schedule has moved the head's rate
    for step in model.finetuner.due(2):
        for name, parameters, scale in model.finetuner.unfreeze(step):
            add_group(optimizer, [], name, parameters, scale)
    rates = {g["name"]: g["lr"] for g in optimizer.param_groups}
    assert rates == pytest.approx(
        {
            "head": 0.2,
            "layer4": 0.1,
            "rest/conv1+bn1": 0.2 * 0.03125,
            "rest/layer1": 0.2 * 0.0625,
            "rest/layer2": 0.2 * 0.125,
            "rest/layer3": 0.2 * 0.25,
        }
    )
    # a resumed run rebuilds the same groups, in the same order
    rebuilt = model.finetuner.parameter_groups(1.0)
    assert [g["name"] for g in rebuilt] == [g["name"] for g in optimizer.param_groups]


def test_one_cycle_peaks_each_group_at_its_rate(tmp_path, stripes_root) -> None:
    onecycle = {
        "scheduler": {
            "_target_": "torch.optim.lr_scheduler.OneCycleLR",
            "max_lr": 0.1,
            "total_steps": None,
            "pct_start": 0.5,
        },
        "interval": "step",
    }
    model = build_classifier(None, layer_decay=0.5, lr=0.1, scheduler=onecycle, image_size=32)
    fit_briefly(model, stripes_root, tmp_path, epochs=2)
    rows = [r for r in logged_metrics(tmp_path) if r.get("lr-SGD/head")]
    for row in rows:
        head = float(row["lr-SGD/head"])
        assert float(row["lr-SGD/layer4"]) == pytest.approx(head * 0.5)
        assert float(row["lr-SGD/layer1"]) == pytest.approx(head * 0.0625)


@pytest.mark.parametrize("value", [0.0, 1.5, "fast"])
def test_a_decay_outside_0_to_1_is_refused(value) -> None:
    with pytest.raises(UserError, match=r"optimizer.layer_decay="):
        build_classifier(None, layer_decay=value, image_size=32)


def test_decay_of_one_is_a_group_per_block_at_the_heads_rate() -> None:
    optimizer = build_classifier(None, layer_decay=1.0, image_size=32).configure_optimizers()
    assert {g["lr"] for g in optimizer[0][0].param_groups} == {0.01}
    assert len(optimizer[0][0].param_groups) == 6
    assert isinstance(optimizer[0][0], torch.optim.SGD)
