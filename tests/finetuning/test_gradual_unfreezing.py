"""Gradual unfreezing (`freeze.unfreeze_at`): parts join the optimizer and the schedule at their
epoch, resume restores them, and schedules that cannot work are refused."""

from __future__ import annotations

from typing import Any

import pytest
from lightning.pytorch.callbacks import Callback
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from src.models.classifier import ImageClassifier
from src.utils.errors import UserError
from tests.helpers import build_classifier, fit_briefly, logged_metrics

#: Every model here: SGD with momentum, on 32 px images.
SGD_32PX = {"momentum": 0.9, "image_size": 32}
STEP = {"scheduler": {"_target_": "torch.optim.lr_scheduler.StepLR", "step_size": 1, "gamma": 0.5}}


class RecordGroups(Callback):
    """At each epoch's first batch: the optimizer groups (name, lr) and what trains."""

    def __init__(self) -> None:
        self.epochs: dict[int, dict[str, Any]] = {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if batch_idx:
            return
        optimizer = trainer.optimizers[0]
        net = pl_module.net
        self.epochs[trainer.current_epoch] = {
            "groups": [(g["name"], g["lr"]) for g in optimizer.param_groups],
            "base_lrs": list(trainer.lr_scheduler_configs[0].scheduler.base_lrs),
            "layer4": net.layer4[0].conv1.weight.requires_grad,
            "layer3": net.layer3[0].conv1.weight.requires_grad,
            "layer4_bn": net.layer4[0].bn1.training,
            "layer3_bn": net.layer3[0].bn1.training,
            "momentum": net.layer4[0].conv1.weight in optimizer.state,
            "in_optimizer": {id(p) for g in optimizer.param_groups for p in g["params"]},
            "trainable": {id(p) for p in net.parameters() if p.requires_grad},
        }


def test_gradual_unfreezing_at_the_configured_epochs(stripes_root, tmp_path) -> None:
    model = build_classifier(
        [], unfreeze_at={"layer4": 1, "layer3": 2}, scheduler=STEP, backbone_lr_mult=0.1, **SGD_32PX
    )
    recorder = RecordGroups()
    fit_briefly(model, stripes_root, tmp_path, epochs=3, callbacks=[recorder])
    e0, e1, e2 = (recorder.epochs[e] for e in range(3))
    assert e0["groups"] == [("head", 0.01)]
    assert not e0["layer4"] and not e0["layer4_bn"] and not e0["layer3"]
    # The new group joins the schedule where the head is, at a tenth of its rate.
    assert e1["groups"] == [("head", 0.005), ("layer4", pytest.approx(0.0005))]
    assert e1["base_lrs"] == [0.01, pytest.approx(0.001)]
    assert e1["layer4"] and e1["layer4_bn"] and not e1["layer3"] and not e1["layer3_bn"]
    assert [name for name, _ in e2["groups"]] == ["head", "layer4", "layer3"]
    assert e2["groups"][2][1] == pytest.approx(0.00025)
    assert e2["layer3"] and e2["layer3_bn"]
    for epoch in (e0, e1, e2):
        assert epoch["in_optimizer"] == epoch["trainable"]
    counts = [
        float(r["params/trainable"]) for r in logged_metrics(tmp_path) if r.get("params/trainable")
    ]
    assert counts == sorted(set(counts)) and len(counts) == 3
    lr_columns = {k for row in logged_metrics(tmp_path) for k, v in row.items() if v and "lr-" in k}
    assert {"lr-SGD/head", "lr-SGD/layer4", "lr-SGD/layer3"} <= lr_columns


def test_resume_after_an_unfreeze_restores_groups_and_state(stripes_root, tmp_path) -> None:
    model = build_classifier(
        [], unfreeze_at={"layer4": 1, "layer3": 3}, scheduler=STEP, backbone_lr_mult=0.1, **SGD_32PX
    )
    trainer = fit_briefly(model, stripes_root, tmp_path / "first", epochs=2)
    checkpoint = tmp_path / "after_unfreeze.ckpt"
    trainer.save_checkpoint(checkpoint)
    saved_groups = [(g["name"], g["lr"]) for g in trainer.optimizers[0].param_groups]
    assert [name for name, _ in saved_groups] == ["head", "layer4"]

    # As train.py resumes: a model built from the config, the checkpoint given to fit.
    resumed = build_classifier(
        [], unfreeze_at={"layer4": 1, "layer3": 3}, scheduler=STEP, backbone_lr_mult=0.1, **SGD_32PX
    )
    recorder = RecordGroups()
    fit_briefly(resumed, stripes_root, tmp_path / "second", 4, [recorder], ckpt_path=checkpoint)
    e2, e3 = recorder.epochs[2], recorder.epochs[3]
    # Epoch 2 goes on with the saved learning rates, base_lrs and layer4's momentum.
    assert e2["groups"] == [(name, pytest.approx(lr)) for name, lr in saved_groups]
    assert e2["base_lrs"] == [0.01, pytest.approx(0.001)]
    assert [lr for _, lr in e3["groups"][:2]] == [pytest.approx(lr / 2) for _, lr in saved_groups]
    assert e2["layer4"] and e2["layer4_bn"] and e2["momentum"] and not e2["layer3"]
    assert [name for name, _ in e3["groups"]] == ["head", "layer4", "layer3"]
    assert e3["layer3"] and e3["in_optimizer"] == e3["trainable"]
    assert sorted(recorder.epochs) == [2, 3]
    # evaluate and predict load the checkpoint alone.
    assert ImageClassifier.load_from_checkpoint(checkpoint).finetuner.unfrozen == ["layer4"]


def test_gradual_unfreezing_with_onecycle(stripes_root, tmp_path) -> None:
    onecycle = {"_target_": "torch.optim.lr_scheduler.OneCycleLR", "max_lr": 0.01}
    scheduler = {"scheduler": {**onecycle, "total_steps": 4}, "interval": "step"}
    model = build_classifier(
        [], unfreeze_at={"layer4": 1}, scheduler=scheduler, backbone_lr_mult=0.1, **SGD_32PX
    )

    class Check(Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            groups = trainer.optimizers[0].param_groups
            for group in groups[1:]:
                assert group["lr"] == pytest.approx(groups[0]["lr"] * 0.1)
                assert group["max_lr"] == pytest.approx(groups[0]["max_lr"] * 0.1)

    fit_briefly(model, stripes_root, tmp_path, epochs=2, callbacks=[Check()])
    assert [g["name"] for g in model.trainer.optimizers[0].param_groups] == ["head", "layer4"]


def test_frozen_batchnorm_of_later_blocks_stays_in_eval_mode() -> None:
    model = build_classifier([], unfreeze_at={"layer4": 1}, **SGD_32PX).train()
    model.finetuner.unfreeze(model.finetuner.due(1)[0])
    assert model.net.layer4[1].bn2.training
    assert not model.net.layer3[0].bn1.training and not model.net.bn1.training
    frozen = model.finetuner.frozen_batchnorms
    assert frozen and all(not m.training for m in frozen if isinstance(m, _BatchNorm))


def test_frozen_batchnorm_stays_frozen_after_conversion_to_sync_batchnorm() -> None:
    """`trainer.sync_batchnorm=true`: Lightning swaps every BatchNorm for a SyncBatchNorm after
    the model is built; the frozen ones must stay in eval mode all the same."""
    model = build_classifier(["layer4"], **SGD_32PX)
    assert nn.SyncBatchNorm.convert_sync_batchnorm(model) is model  # as Lightning's LayerSync
    model.train()
    assert isinstance(model.net.layer3[0].bn1, nn.SyncBatchNorm)
    assert not model.net.layer3[0].bn1.training and not model.net.bn1.training
    assert model.net.layer4[0].bn1.training


def test_rest_unfreezes_everything_still_frozen() -> None:
    model = build_classifier([], unfreeze_at={"layer4": 2, "rest": 1}, **SGD_32PX)
    steps = model.finetuner.policy.unfreeze_steps(model.net)
    assert [(s.name, s.epoch) for s in steps] == [("rest", 1), ("layer4", 2)]
    assert "layer4" not in steps[0].children and "layer1" in steps[0].children
    for step in steps:
        model.finetuner.unfreeze(step)
    assert all(p.requires_grad for p in model.parameters())


@pytest.mark.parametrize(
    ("trainable", "unfreeze_at", "message"),
    [
        ([], {"layer9": 1}, r"layer9.*valid names: conv1, .*, or rest"),
        ([], {"layer4": 0}, r"layer4=0.*from 1 on"),
        (["layer4"], {"layer4": 2}, "which freeze.trainable trains"),
        (None, {"layer4": 2}, "freeze.trainable is null"),
    ],
)
def test_bad_schedules_are_refused(trainable, unfreeze_at, message) -> None:
    with pytest.raises(UserError, match=message):
        build_classifier(trainable, unfreeze_at=unfreeze_at, **SGD_32PX)


def test_scheduler_that_cannot_grow_is_refused_before_training(stripes_root, tmp_path) -> None:
    cyclic = {"_target_": "torch.optim.lr_scheduler.CyclicLR", "base_lr": 0.001, "max_lr": 0.01}
    model = build_classifier(
        [],
        unfreeze_at={"layer4": 1},
        scheduler={"scheduler": cyclic, "interval": "step"},
        **SGD_32PX,
    )
    with pytest.raises(UserError, match="CyclicLR cannot follow"):
        fit_briefly(model, stripes_root, tmp_path, epochs=2)


def test_resume_with_another_schedule_is_refused() -> None:
    with pytest.raises(UserError, match=r"unfrozen \['layer2'\].*freeze config it was trained"):
        build_classifier([], unfreeze_at={"layer4": 1}, **SGD_32PX).on_load_checkpoint(
            {"unfrozen": ["layer2"]}
        )
