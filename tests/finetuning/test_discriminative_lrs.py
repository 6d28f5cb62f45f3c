"""Discriminative learning rates (`optimizer.backbone_lr_mult`): the head and the backbone in
optimizer groups of their own, their ratio kept by schedulers and logged per group."""

from __future__ import annotations

import pytest
import torch

from tests.helpers import build_classifier, fit_briefly, logged_metrics

#: Every model here: SGD with momentum, on 32 px images.
SGD_32PX = {"momentum": 0.9, "image_size": 32}


def group_ids(optimizer: torch.optim.Optimizer) -> dict[str, set[int]]:
    return {g.get("name", "all"): {id(p) for p in g["params"]} for g in optimizer.param_groups}


def test_backbone_lr_mult_splits_head_and_backbone() -> None:
    model = build_classifier(None, backbone_lr_mult=0.1, **SGD_32PX)
    optimizer = model.configure_optimizers()[0][0]
    assert [(g["name"], g["lr"]) for g in optimizer.param_groups] == [
        ("head", 0.01),
        ("backbone", pytest.approx(0.001)),
    ]
    groups = group_ids(optimizer)
    assert groups["head"] == {id(model.net.fc.weight), id(model.net.fc.bias)}
    assert groups["backbone"] == {id(p) for p in model.parameters()} - groups["head"]
    assert "backbone_lr_mult" not in optimizer.defaults


def test_mult_of_one_keeps_a_single_group() -> None:
    optimizer = build_classifier(
        ["layer4"], backbone_lr_mult=1.0, **SGD_32PX
    ).configure_optimizers()[0][0]
    assert len(optimizer.param_groups) == 1 and "name" not in optimizer.param_groups[0]


def test_onecycle_keeps_the_ratio_between_groups() -> None:
    onecycle = {
        "_target_": "torch.optim.lr_scheduler.OneCycleLR",
        "max_lr": 0.01,
        "total_steps": 10,
    }
    model = build_classifier(
        ["layer4"], scheduler={"scheduler": onecycle}, backbone_lr_mult=0.1, **SGD_32PX
    )
    head, backbone = model.configure_optimizers()[0][0].param_groups
    assert backbone["max_lr"] == pytest.approx(head["max_lr"] * 0.1)
    assert backbone["lr"] == pytest.approx(head["lr"] * 0.1)


def test_lr_monitor_logs_each_named_group(stripes_root, tmp_path) -> None:
    model = build_classifier(["layer4"], backbone_lr_mult=0.1, **SGD_32PX)
    fit_briefly(model, stripes_root, tmp_path, epochs=1)
    rows = logged_metrics(tmp_path)
    head = [float(r["lr-SGD/head"]) for r in rows if r.get("lr-SGD/head")]
    backbone = [float(r["lr-SGD/backbone"]) for r in rows if r.get("lr-SGD/backbone")]
    assert head == [0.01] and backbone == [pytest.approx(0.001)]
    assert [r["params/trainable"] for r in rows if r.get("params/trainable")] == ["8394754.0"]
