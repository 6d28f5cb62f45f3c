"""The hparams table: the settings people compare, one readable column each, and results."""

from __future__ import annotations

from pathlib import Path

import yaml

from src.config.hparams import compared_settings
from src.train import train


def test_a_column_per_compared_setting_of_simple_types(make_config, folder_overrides) -> None:
    cfg = make_config([*folder_overrides, "freeze=layer3_4", "optimizer.backbone_lr_mult=0.1"])
    settings = compared_settings(cfg)
    assert len(settings) <= 20
    assert all(isinstance(value, (bool, int, float, str)) for value in settings.values())
    assert settings["model"] == "resnet18" and settings["optimizer"] == "SGD"
    assert settings["freeze.trainable"] == "['layer3', 'layer4']"
    assert settings["lr"] > 0 and settings["backbone_lr_mult"] == 0.1  # resolved numbers
    assert settings["scheduler"] == "StepLR" and settings["batch_size"] == 4


def test_the_loggers_get_the_compared_settings_and_the_results(
    make_config, folder_overrides
) -> None:
    cfg = make_config([*folder_overrides, "logger=default"])
    train(cfg)
    run = Path(cfg.paths.output_dir)
    logged = yaml.safe_load((run / "csv" / "hparams.yaml").read_text())
    assert set(logged) == set(compared_settings(cfg))  # not the 98 keys of the whole config
    metrics = (run / "csv" / "metrics.csv").read_text().splitlines()[0]
    assert "time/train_s" in metrics and "val/acc_best" in metrics
