"""`StopOnNonFiniteLoss`: a NaN or infinite loss stops the run at once, the best checkpoint kept."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from src.callbacks.nonfinite_loss import NonFiniteLossError
from src.train import train


@pytest.mark.slow
def test_nonfinite_loss_stops_at_once_and_keeps_the_best(make_config, folder_overrides) -> None:
    cfg = make_config(
        [
            *folder_overrides,
            "trainer.max_epochs=3",
            "+callbacks.poison._target_=tests.helpers.fault_helpers.PoisonWeights",
            "+callbacks.poison.at_step=3",
        ]
    )
    with pytest.raises(NonFiniteLossError, match=r"became nan at epoch 1, step 3.*best checkpoint"):
        train(cfg)
    checkpoints = Path(cfg.paths.output_dir) / "checkpoints"
    best = torch.load(checkpoints / "best.ckpt", weights_only=True)
    assert all(
        torch.isfinite(t).all() for t in best["state_dict"].values() if t.is_floating_point()
    )
    assert torch.load(checkpoints / "last.ckpt", weights_only=True)["global_step"] == 2
