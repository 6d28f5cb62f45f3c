"""Faults during training: kills, SIGTERM, NaN losses, full disks, unsafe files."""

from __future__ import annotations

import errno
import os
import pickle
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from src.callbacks import checkpoints as checkpointing
from src.callbacks.checkpoints import CheckpointWriteError
from src.callbacks.nonfinite_loss import NonFiniteLossError
from src.models.checkpoint import load_classifier
from src.models.network import WeightsError, read_weights_file
from src.train import EXIT_SIGTERM, train
from src.utils.errors import UserError
from tests.conftest import REPO, TINY
from tests.fault_helpers import RecordSignalHandlers

pytestmark = pytest.mark.slow

SLOW = ["+callbacks.slow._target_=tests.fault_helpers.SlowDown", "+callbacks.slow.seconds=0.4"]


def start_training(cwd: Path, *overrides: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-m", "src.train", *overrides],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, process.stdout.read()[-3000:]
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.1)


def the_run_dir(cwd: Path) -> Path:
    (run,) = (cwd / "outputs" / "train").iterdir()
    return run


def best_score(checkpoint: dict) -> float:
    """The best val/acc recorded by the best-checkpoint callback inside a checkpoint."""
    states = checkpoint["callbacks"].items()
    return float(next(state for key, state in states if "val/acc" in key)["best_model_score"])


def resume_to_the_end(cwd: Path, base: list[str], last: Path) -> Path:
    """Resume from `last` in a fresh run dir and return that dir."""
    result = subprocess.run(
        [sys.executable, "-m", "src.train", *base, f"ckpt_path={last}", "hydra.run.dir=resumed"],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return cwd / "resumed"


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_killed_run_resumes_to_the_same_end(sig, stripes_root: Path, tmp_path: Path) -> None:
    base = ["data=folder", f"data.root={stripes_root}", *TINY, "trainer.max_epochs=3"]
    process = start_training(tmp_path, *base, *SLOW)
    wait_for(tmp_path / "outputs" / "train", process)
    run = the_run_dir(tmp_path)
    wait_for(run / "checkpoints" / "last.ckpt", process)
    process.send_signal(sig)
    output = process.communicate(timeout=120)[0]
    if sig == signal.SIGTERM:
        assert process.returncode == EXIT_SIGTERM, output[-3000:]
        assert "resume with ckpt_path=" in output
        assert '"status": "interrupted"' in (run / "summary.json").read_text()
    else:
        assert process.returncode == -signal.SIGKILL
    last = run / "checkpoints" / "last.ckpt"
    stopped = torch.load(last, weights_only=True)  # complete: never a truncated file
    best_before = torch.load(run / "checkpoints" / "best.ckpt", weights_only=True)
    assert stopped["global_step"] < 6
    assert not list((run / "checkpoints").glob(".*.tmp"))

    resumed = resume_to_the_end(tmp_path, base, last)
    final = torch.load(resumed / "checkpoints" / "last.ckpt", weights_only=True)
    assert (final["epoch"], final["global_step"]) == (2, 6)
    best_after = torch.load(resumed / "checkpoints" / "best.ckpt", weights_only=True)
    score = next(v for k, v in best_after["callbacks"].items() if "val/acc" in k)[
        "best_model_score"
    ]
    old = next(v for k, v in best_before["callbacks"].items() if "val/acc" in k)["best_model_score"]
    assert score >= old  # the best checkpoint is carried over, never replaced by a worse one


def test_nonfinite_loss_stops_at_once_and_keeps_the_best(make_config, folder_overrides) -> None:
    cfg = make_config(
        [
            *folder_overrides,
            "trainer.max_epochs=3",
            "+callbacks.poison._target_=tests.fault_helpers.PoisonWeights",
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


def test_full_disk_while_checkpointing_keeps_earlier_checkpoints(
    make_config, folder_overrides, monkeypatch
) -> None:
    real_save = torch.save
    calls = {"n": 0}

    def save_until_disk_full(obj, handle, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 2:  # epoch 0 wrote best and last; epoch 1 hits a full disk
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


class RunsCode:
    """Unpickling this calls os.system: what a malicious checkpoint would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickles_that_run_code_are_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.ckpt"
    with evil.open("wb") as handle:
        pickle.dump({"state_dict": {}, "payload": RunsCode(marker)}, handle)
    with pytest.raises(UserError, match="not a loadable checkpoint"):
        load_classifier(evil)
    with pytest.raises(WeightsError, match="cannot be loaded"):
        read_weights_file(evil)
    assert not marker.exists()


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
            "+callbacks.record._target_=tests.fault_helpers.RecordSignalHandlers",
        ]
    )
    train(cfg)
    handlers = RecordSignalHandlers.handlers
    usr1 = [f.__name__ for f in getattr(handlers["SIGUSR1"], "signal_handlers", [])]
    term = [f.__name__ for f in getattr(handlers["SIGTERM"], "signal_handlers", [])]
    assert "_slurm_sigusr_handler_fn" in usr1
    assert "_sigterm_notifier_fn" in term


def test_the_only_download_address_is_the_configured_data_set() -> None:
    """No code or config names another address than the data set's (weights: torchvision's)."""
    found = set()
    for path in [*(REPO / "src").rglob("*.py"), *(REPO / "conf").rglob("*.yaml")]:
        found.update(re.findall(r"https?://[^\s\"')]+", path.read_text(encoding="utf-8")))
    allowed = (
        "https://download.microsoft.com/download/3/E/1/"
        "3E1C3F21-ECDB-4869-8368-6DEBA77B919F/kagglecatsanddogs_5340.zip"
    )
    assert found and all(allowed.startswith(url) for url in found), found
