"""`StopOnNonFiniteLoss`: a NaN or infinite loss stops the run at once, the best checkpoint kept."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from src.callbacks.nonfinite_loss import NonFiniteLossError
from src.train import train
from tests.helpers import TINY, run_module


@pytest.mark.slow
@pytest.mark.parametrize("log_every_n_steps", [1, 50])
def test_nonfinite_loss_stops_at_once_and_keeps_the_best(
    make_config, folder_overrides, log_every_n_steps: int
) -> None:
    """Read at every step, or only before validation (logging interval longer than the run):
    either way the step is named and no checkpoint of the broken weights is written."""
    cfg = make_config(
        [
            *folder_overrides,
            "trainer.max_epochs=3",
            f"trainer.log_every_n_steps={log_every_n_steps}",
            "+callbacks.poison._target_=tests.helpers.fault_helpers.PoisonWeights",
            "+callbacks.poison.at_step=3",
        ]
    )
    message = r"became nan at step 3 \(epoch 1\).*best checkpoint"
    with pytest.raises(NonFiniteLossError, match=message):
        train(cfg)
    checkpoints = Path(cfg.paths.output_dir) / "checkpoints"
    best = torch.load(checkpoints / "best.ckpt", weights_only=True)
    assert all(
        torch.isfinite(t).all() for t in best["state_dict"].values() if t.is_floating_point()
    )
    assert torch.load(checkpoints / "last.ckpt", weights_only=True)["global_step"] == 2


@pytest.mark.slow
def test_a_nan_in_one_process_stops_every_process(stripes_root: Path, tmp_path: Path) -> None:
    """Two DDP processes on the CPU; only the second one's loss becomes NaN. Without a reduced
    decision the first would wait in validation's all-reduce until the process-group timeout."""
    result = run_module(
        "src.train", "data=folder", f"data.root={stripes_root}", *TINY,
        "trainer.accelerator=cpu", "trainer.devices=2",
        "+callbacks.poison._target_=tests.helpers.fault_helpers.PoisonWeights",
        "+callbacks.poison.at_step=3", "+callbacks.poison.rank=1",
        cwd=tmp_path, timeout=240,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr[-3000:]
    assert "train/loss became nan at step 3 (epoch 1)" in result.stderr  # the second process
    assert "became non-finite in another process, by step 3" in result.stderr  # the first
