"""`tune=lr_find`: the learning-rate finder before training, its plot, its suggestion used."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from src.train import train

pytestmark = pytest.mark.slow

FIND = ["tune=lr_find", "tune.num_training=20", "tune.min_lr=1e-5", "tune.max_lr=1"]


def saved(cfg) -> dict:
    return torch.load(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt", weights_only=True)


def test_the_suggestion_becomes_the_heads_rate_and_the_backbone_keeps_its_multiplier(
    make_config, folder_overrides
) -> None:
    overrides = ["freeze=layer4", "optimizer.backbone_lr_mult=0.1", "optimizer.lr=0.0005"]
    cfg = make_config([*folder_overrides, *FIND, *overrides])
    train(cfg)
    assert (Path(cfg.paths.output_dir) / "lr_find.png").stat().st_size > 0
    checkpoint = saved(cfg)
    assert (checkpoint["epoch"], checkpoint["global_step"]) == (1, 4)  # the whole run after it
    found = checkpoint["hyper_parameters"]["optimizer"]["lr"]
    assert found != 0.0005 and 1e-5 <= found <= 1
    groups = {g["name"]: g["lr"] for g in checkpoint["optimizer_states"][0]["param_groups"]}
    assert groups["head"] == pytest.approx(found)
    assert groups["backbone"] == pytest.approx(found * 0.1)


def test_on_cached_features_and_reported_only(make_config, folder_overrides) -> None:
    overrides = ["freeze=all", "freeze.cache_features=true", "tune.use_suggestion=false"]
    cfg = make_config([*folder_overrides, *FIND, *overrides, "optimizer.lr=0.0005"])
    train(cfg)
    assert (Path(cfg.paths.output_dir) / "lr_find.png").is_file()
    assert saved(cfg)["hyper_parameters"]["optimizer"]["lr"] == 0.0005
