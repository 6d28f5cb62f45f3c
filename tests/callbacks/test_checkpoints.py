"""Checkpoints in real runs: a full disk leaves the earlier ones intact, and under SLURM the
requeue and SIGTERM handlers stay in place."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
import torch

import src.callbacks.checkpoints as checkpointing
from src.callbacks.checkpoints import CheckpointWriteError
from src.train import train
from tests.helpers.fault_helpers import RecordSignalHandlers

pytestmark = pytest.mark.slow


def test_full_disk_while_checkpointing_keeps_earlier_checkpoints(
    make_config, folder_overrides, monkeypatch
) -> None:
    real_save = torch.save
    calls = {"n": 0}

    def save_until_disk_full(obj, handle, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 1:  # epoch 0 wrote best (last links to it); epoch 1 hits a full disk
            handle.write(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, handle, *args, **kwargs)

    monkeypatch.setattr(checkpointing.torch, "save", save_until_disk_full)
    cfg = make_config(folder_overrides)
    with pytest.raises(CheckpointWriteError, match=r"No space left.*earlier checkpoints.*intact"):
        train(cfg)
    checkpoints = Path(cfg.paths.output_dir) / "checkpoints"
    assert torch.load(checkpoints / "last.ckpt", weights_only=True)["global_step"] == 2
    assert not list(checkpoints.glob(".*.tmp"))


def test_a_checkpoint_of_the_step_just_written_is_a_link_not_a_second_write(
    make_config, folder_overrides, monkeypatch
) -> None:
    """An epoch that improves writes best.ckpt once; last.ckpt is the same file (85 MB saved
    per improving epoch for a ResNet34). Both load as complete checkpoints. (Calibration, off
    here, rewrites best.ckpt once more when the fit ends, to a new file: last.ckpt keeps the
    weights it had.)"""
    real_save = torch.save
    saved: list[str] = []

    def count(obj, handle, *args, **kwargs):
        saved.append(Path(handle.name).name)
        return real_save(obj, handle, *args, **kwargs)

    monkeypatch.setattr(checkpointing.torch, "save", count)
    cfg = make_config(
        [
            *folder_overrides,
            "trainer.max_epochs=1",
            "callbacks.best_checkpoint_report.calibrate=false",
        ]
    )
    train(cfg)
    checkpoints = Path(cfg.paths.output_dir) / "checkpoints"
    assert len(saved) == 1 and saved[0].startswith(".best.ckpt."), saved
    assert (checkpoints / "best.ckpt").samefile(checkpoints / "last.ckpt")
    for name in ("best.ckpt", "last.ckpt"):
        assert torch.load(checkpoints / name, weights_only=True)["global_step"] == 2
    assert not list(checkpoints.glob(".*.tmp"))


SLURM_JOB = {"SLURM_NTASKS": "1", "SLURM_JOB_NAME": "train", "SLURM_JOB_ID": "42",
             "SLURM_NODEID": "0", "SLURM_PROCID": "0", "SLURM_LOCALID": "0"}  # fmt: skip


def test_slurm_requeue_handlers_stay_in_place(make_config, folder_overrides, monkeypatch) -> None:
    """Under SLURM, Lightning's requeue handler (SIGUSR1) and SIGTERM handling both stay active."""
    for key, value in SLURM_JOB.items():
        monkeypatch.setenv(key, value)
    cfg = make_config(
        [
            *folder_overrides,
            "trainer.max_epochs=1",
            "+callbacks.record._target_=tests.helpers.fault_helpers.RecordSignalHandlers",
        ]
    )
    train(cfg)
    handlers = RecordSignalHandlers.handlers
    usr1 = [f.__name__ for f in getattr(handlers["SIGUSR1"], "signal_handlers", [])]
    term = [f.__name__ for f in getattr(handlers["SIGTERM"], "signal_handlers", [])]
    assert "_slurm_sigusr_handler_fn" in usr1
    assert "_sigterm_notifier_fn" in term
