"""Fine-tuning strategies: discriminative learning rates, gradual unfreezing (resume included),
and the experiment presets."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import Callback, LearningRateMonitor
from lightning.pytorch.loggers import CSVLogger
from torch.nn.modules.batchnorm import _BatchNorm

from src.data.datamodule import ImageFolderDataModule
from src.models.classifier import ImageClassifier
from src.train import train
from src.utils.errors import UserError
from tests.conftest import TINY

IMAGENET = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
STEP = {"scheduler": {"_target_": "torch.optim.lr_scheduler.StepLR", "step_size": 1, "gamma": 0.5}}


def classifier(
    trainable: list[str] | None = None,
    unfreeze_at: dict[str, int] | None = None,
    scheduler: dict[str, Any] | None = None,
    **optimizer: Any,
) -> ImageClassifier:
    return ImageClassifier(
        class_names=["horizontal", "vertical"],
        model={"name": "resnet18", **IMAGENET},
        freeze={"trainable": trainable, "train_bn": False, "unfreeze_at": unfreeze_at},
        optimizer={"_target_": "torch.optim.SGD", "lr": 0.01, "momentum": 0.9, **optimizer},
        scheduler=scheduler,
        image_size=32,
    )


def fit(model, stripes_root, tmp_path, epochs, callbacks=(), ckpt_path=None) -> L.Trainer:
    trainer = L.Trainer(
        max_epochs=epochs,
        limit_train_batches=2,
        limit_val_batches=1,
        accelerator="cpu",
        logger=CSVLogger(tmp_path, name="csv", version=0),
        log_every_n_steps=1,
        enable_checkpointing=False,
        enable_progress_bar=False,
        num_sanity_val_steps=0,
        callbacks=[LearningRateMonitor("epoch"), *callbacks],
    )
    datamodule = ImageFolderDataModule(
        str(stripes_root), image_size=32, batch_size=4, num_workers=0
    )
    trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
    return trainer


def metrics(tmp_path: Path) -> list[dict[str, str]]:
    with open(tmp_path / "csv" / "version_0" / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def group_ids(optimizer: torch.optim.Optimizer) -> dict[str, set[int]]:
    return {g.get("name", "all"): {id(p) for p in g["params"]} for g in optimizer.param_groups}


# ------------------------------------------------------------- discriminative learning rates
def test_backbone_lr_mult_splits_head_and_backbone() -> None:
    model = classifier(None, backbone_lr_mult=0.1)
    optimizer = model.configure_optimizers()["optimizer"]
    assert [(g["name"], g["lr"]) for g in optimizer.param_groups] == [
        ("head", 0.01),
        ("backbone", pytest.approx(0.001)),
    ]
    groups = group_ids(optimizer)
    assert groups["head"] == {id(model.net.fc.weight), id(model.net.fc.bias)}
    assert groups["backbone"] == {id(p) for p in model.parameters()} - groups["head"]
    assert "backbone_lr_mult" not in optimizer.defaults


def test_mult_of_one_keeps_a_single_group() -> None:
    optimizer = classifier(["layer4"], backbone_lr_mult=1.0).configure_optimizers()["optimizer"]
    assert len(optimizer.param_groups) == 1 and "name" not in optimizer.param_groups[0]


def test_onecycle_keeps_the_ratio_between_groups() -> None:
    onecycle = {
        "_target_": "torch.optim.lr_scheduler.OneCycleLR",
        "max_lr": 0.01,
        "total_steps": 10,
    }
    model = classifier(["layer4"], scheduler={"scheduler": onecycle}, backbone_lr_mult=0.1)
    head, backbone = model.configure_optimizers()["optimizer"].param_groups
    assert backbone["max_lr"] == pytest.approx(head["max_lr"] * 0.1)
    assert backbone["lr"] == pytest.approx(head["lr"] * 0.1)


def test_lr_monitor_logs_each_named_group(stripes_root, tmp_path) -> None:
    fit(classifier(["layer4"], backbone_lr_mult=0.1), stripes_root, tmp_path, epochs=1)
    rows = metrics(tmp_path)
    head = [float(r["lr-SGD/head"]) for r in rows if r.get("lr-SGD/head")]
    backbone = [float(r["lr-SGD/backbone"]) for r in rows if r.get("lr-SGD/backbone")]
    assert head == [0.01] and backbone == [pytest.approx(0.001)]
    assert [r["params/trainable"] for r in rows if r.get("params/trainable")] == ["8394754.0"]


# --------------------------------------------------------------------- gradual unfreezing
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
    model = classifier([], {"layer4": 1, "layer3": 2}, STEP, backbone_lr_mult=0.1)
    recorder = RecordGroups()
    fit(model, stripes_root, tmp_path, epochs=3, callbacks=[recorder])
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
    counts = [float(r["params/trainable"]) for r in metrics(tmp_path) if r.get("params/trainable")]
    assert counts == sorted(set(counts)) and len(counts) == 3
    lr_columns = {k for row in metrics(tmp_path) for k, v in row.items() if v and "lr-" in k}
    assert {"lr-SGD/head", "lr-SGD/layer4", "lr-SGD/layer3"} <= lr_columns


def test_resume_after_an_unfreeze_restores_groups_and_state(stripes_root, tmp_path) -> None:
    model = classifier([], {"layer4": 1, "layer3": 3}, STEP, backbone_lr_mult=0.1)
    trainer = fit(model, stripes_root, tmp_path / "first", epochs=2)
    checkpoint = tmp_path / "after_unfreeze.ckpt"
    trainer.save_checkpoint(checkpoint)
    saved_groups = [(g["name"], g["lr"]) for g in trainer.optimizers[0].param_groups]
    assert [name for name, _ in saved_groups] == ["head", "layer4"]

    # As train.py resumes: a model built from the config, the checkpoint given to fit.
    resumed = classifier([], {"layer4": 1, "layer3": 3}, STEP, backbone_lr_mult=0.1)
    recorder = RecordGroups()
    fit(resumed, stripes_root, tmp_path / "second", 4, [recorder], ckpt_path=checkpoint)
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
    model = classifier([], {"layer4": 1}, scheduler, backbone_lr_mult=0.1)

    class Check(Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            groups = trainer.optimizers[0].param_groups
            for group in groups[1:]:
                assert group["lr"] == pytest.approx(groups[0]["lr"] * 0.1)
                assert group["max_lr"] == pytest.approx(groups[0]["max_lr"] * 0.1)

    fit(model, stripes_root, tmp_path, epochs=2, callbacks=[Check()])
    assert [g["name"] for g in model.trainer.optimizers[0].param_groups] == ["head", "layer4"]


def test_frozen_batchnorm_of_later_blocks_stays_in_eval_mode() -> None:
    model = classifier([], {"layer4": 1}).train()
    model.finetuner.unfreeze(model.finetuner.due(1)[0])
    assert model.net.layer4[1].bn2.training
    assert not model.net.layer3[0].bn1.training and not model.net.bn1.training
    frozen = model.finetuner.frozen_batchnorms
    assert frozen and all(not m.training for m in frozen if isinstance(m, _BatchNorm))


def test_rest_unfreezes_everything_still_frozen() -> None:
    model = classifier([], {"layer4": 2, "rest": 1})
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
        classifier(trainable, unfreeze_at)


def test_scheduler_that_cannot_grow_is_refused_before_training(stripes_root, tmp_path) -> None:
    cyclic = {"_target_": "torch.optim.lr_scheduler.CyclicLR", "base_lr": 0.001, "max_lr": 0.01}
    model = classifier([], {"layer4": 1}, {"scheduler": cyclic, "interval": "step"})
    with pytest.raises(UserError, match="CyclicLR cannot follow"):
        fit(model, stripes_root, tmp_path, epochs=2)


# ------------------------------------------------------------------------------- presets
PRESETS = ["tutorial_finetune", "tutorial_feature_extractor", "modern"]


@pytest.mark.parametrize("preset", PRESETS)
def test_tutorial_presets_are_the_tutorial_recipe(preset, make_config) -> None:
    cfg = make_config([f"experiment={preset}"])
    assert (cfg.model.name, cfg.model.pretrained) == ("resnet34", True)
    assert cfg.data.image_size == 224 and cfg.data._target_.endswith("CatsDogsDataModule")
    if preset == "modern":
        assert cfg.freeze.trainable == [] and dict(cfg.freeze.unfreeze_at) == {"rest": 1}
        assert cfg.optimizer._target_ == "torch.optim.AdamW"
        assert cfg.optimizer.backbone_lr_mult == 0.1
        assert cfg.scheduler.scheduler.T_max == cfg.trainer.max_epochs
        return
    assert cfg.freeze.trainable == (None if preset == "tutorial_finetune" else [])
    assert "unfreeze_at" not in cfg.freeze
    optimizer = {k: cfg.optimizer[k] for k in ("_target_", "lr", "momentum", "backbone_lr_mult")}
    assert optimizer == {
        "_target_": "torch.optim.SGD",
        "lr": 0.001,
        "momentum": 0.9,
        "backbone_lr_mult": 1.0,
    }
    assert cfg.scheduler.scheduler._target_ == "torch.optim.lr_scheduler.StepLR"
    assert (cfg.scheduler.scheduler.step_size, cfg.scheduler.scheduler.gamma) == (7, 0.1)
    assert (cfg.trainer.max_epochs, cfg.data.batch_size) == (25, 4)
    augment = cfg.data.augment
    assert (augment.enabled, augment.rotation_degrees, augment.horizontal_flip) == (True, 15, True)


@pytest.mark.slow
@pytest.mark.parametrize("preset", PRESETS)
def test_preset_trains_on_other_data(preset, make_config, stripes_root) -> None:
    overrides = [f"experiment={preset}", "data=folder", f"data.root={stripes_root}", *TINY]
    best = train(make_config(overrides))
    assert best is not None and 0.0 <= best <= 1.0


def test_resume_with_another_schedule_is_refused() -> None:
    with pytest.raises(UserError, match=r"unfrozen \['layer2'\].*freeze config it was trained"):
        classifier([], {"layer4": 1}).on_load_checkpoint({"unfrozen": ["layer2"]})
