"""The callbacks a run opts in to: `weight_averaging=ema` and `early_stopping=val_acc`."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from src.evaluate import evaluate
from src.train import train

pytestmark = pytest.mark.slow

EMA = ["weight_averaging=ema", "weight_averaging.decay=0.5"]


def saved(run: Path, name: str) -> dict:
    return torch.load(run / "checkpoints" / name, weights_only=True)


def test_ema_weights_are_validated_saved_evaluated_and_resumed(
    make_config, folder_overrides, tmp_path: Path
) -> None:
    first = tmp_path / "first"
    train(make_config([*folder_overrides, *EMA, f"paths.output_dir={first}"]))
    last = saved(first, "last.ckpt")
    weight = "net.fc.weight"
    assert not torch.equal(last["state_dict"][weight], last["current_model_state"][weight])
    updates = int(last["averaging_state"]["n_averaged"])
    assert updates > 0

    # best.ckpt holds the weights validation scored: evaluate reproduces that score
    best = first / "checkpoints" / "best.ckpt"
    callbacks = saved(first, "best.ckpt")["callbacks"]
    score = next(v["best_model_score"] for k, v in callbacks.items() if "Checkpoint" in k)
    metrics = evaluate(make_config([f"ckpt_path={best}"], config_name="evaluate"))
    assert metrics["accuracy"] == pytest.approx(float(score))

    # a resumed run goes on averaging where the first stopped (one more epoch: 2 steps)
    resumed = tmp_path / "resumed"
    overrides = ["trainer.max_epochs=3", f"ckpt_path={first / 'checkpoints' / 'last.ckpt'}"]
    train(make_config([*folder_overrides, *EMA, *overrides, f"paths.output_dir={resumed}"]))
    assert int(saved(resumed, "last.ckpt")["averaging_state"]["n_averaged"]) == updates + 2


def test_a_run_averaged_by_lightnings_own_ema_resumes_with_the_projects(
    make_config, folder_overrides, tmp_path: Path
) -> None:
    """Checkpoints written while `weight_averaging=ema` was Lightning's class go on averaging."""
    first = tmp_path / "first"
    lightnings = "weight_averaging._target_=lightning.pytorch.callbacks.EMAWeightAveraging"
    train(make_config([*folder_overrides, *EMA, lightnings, f"paths.output_dir={first}"]))
    updates = int(saved(first, "last.ckpt")["averaging_state"]["n_averaged"])

    resumed = tmp_path / "resumed"
    overrides = ["trainer.max_epochs=3", f"ckpt_path={first / 'checkpoints' / 'last.ckpt'}"]
    train(make_config([*folder_overrides, *EMA, *overrides, f"paths.output_dir={resumed}"]))
    last = saved(resumed, "last.ckpt")
    assert int(last["averaging_state"]["n_averaged"]) == updates + 2
    weight = "net.fc.weight"
    assert not torch.equal(last["state_dict"][weight], last["current_model_state"][weight])


def test_early_stopping_ends_a_run_that_stopped_improving(
    make_config, folder_overrides, tmp_path: Path
) -> None:
    """With a vanishing learning rate nothing improves after the first epoch: patience 1 stops the
    run after the second of six."""
    overrides = ["early_stopping=val_acc", "early_stopping.patience=1", "optimizer.lr=1e-12"]
    cfg = make_config([*folder_overrides, *overrides, "trainer.max_epochs=6"])
    train(cfg)
    run = Path(cfg.paths.output_dir)
    assert saved(run, "last.ckpt")["epoch"] == 1
    assert (run / "checkpoints" / "best.ckpt").is_file()
