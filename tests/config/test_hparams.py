"""The hparams table: a column for every setting that shapes a result, derived from the run's own
config, and the results."""

from __future__ import annotations

from pathlib import Path

import yaml
from omegaconf import OmegaConf

from src.config.hparams import COMPARED_GROUPS, NOT_COMPARED, compared_settings
from src.train import train


def test_a_column_per_setting_of_simple_types(make_config, folder_overrides) -> None:
    cfg = make_config([*folder_overrides, "freeze=layer3_4", "optimizer.backbone_lr_mult=0.1"])
    settings = compared_settings(cfg)
    assert all(isinstance(value, (bool, int, float, str)) for value in settings.values())
    assert settings["group:freeze"] == "layer3_4" and settings["freeze.trainable_blocks"] == 2
    assert settings["model.name"] == "resnet18" and settings["optimizer"] == "SGD"
    assert settings["optimizer.lr"] > 0 and settings["optimizer.backbone_lr_mult"] == 0.1
    assert settings["scheduler.scheduler"] == "StepLR" and settings["data.batch_size"] == 4
    assert settings["freeze.trainable"] == "null" and settings["seed"] == 42
    assert "data.cache_dir" not in settings and "trainer.log_every_n_steps" not in settings


def test_every_setting_of_the_compared_groups_is_a_column(make_config, folder_overrides) -> None:
    """Derived, not listed: a setting that a group gains becomes a column by itself."""
    cfg = make_config([*folder_overrides, "weight_averaging=ema", "+model.drop_rate=0.1"])
    settings = compared_settings(cfg)
    plain = OmegaConf.to_container(cfg, resolve=True)
    for group in COMPARED_GROUPS:
        for key, value in (plain.get(group) or {}).items():
            if key in NOT_COMPARED.get(group, set()) or key == "_target_":
                continue
            assert any(name.startswith(f"{group}.{key}") for name in settings), (group, key)
            if not isinstance(value, dict):
                assert f"{group}.{key}" in settings, (group, key)
    assert settings["model.drop_rate"] == 0.1
    assert settings["weight_averaging.decay"] == 0.999


def test_the_loggers_get_the_compared_settings_and_the_results(
    make_config, folder_overrides
) -> None:
    cfg = make_config([*folder_overrides, "logger=default"])
    train(cfg)
    run = Path(cfg.paths.output_dir)
    logged = yaml.safe_load((run / "csv" / "hparams.yaml").read_text())
    assert set(logged) == set(compared_settings(cfg))
    assert "paths" not in {name.split(".")[0] for name in logged}  # not the whole config
    metrics = (run / "csv" / "metrics.csv").read_text().splitlines()[0]
    assert "time/train_s" in metrics and "val/acc_best" in metrics
