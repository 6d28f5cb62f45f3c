"""DDP on the CPU with two processes, launched from the command line as a user would."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.helpers import TINY, run_module

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    "trainer_overrides",
    [
        ["trainer=ddp", "trainer.accelerator=cpu"],
        ["trainer.accelerator=cpu", "trainer.devices=2", "model=timm"],  # timm's ResNet18
    ],
    ids=["trainer=ddp", "trainer.devices=2 timm"],
)
def test_two_processes_share_one_run_dir(
    trainer_overrides: list[str], stripes_root: Path, tmp_path: Path
) -> None:
    progressive = "data.progressive_resizing.enabled=true"
    result = run_module(
        "src.train", "data=folder", f"data.root={stripes_root}", *TINY, *trainer_overrides,
        progressive, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    run_dirs = list((tmp_path / "outputs" / "train").iterdir())
    assert len(run_dirs) == 1, run_dirs
    run = run_dirs[0]
    # the second process wrote here too, and both grow their training images alike
    sizes = "Progressive resizing: epochs 0-1 train at 16, 32 px; validation at 32 px"
    for log in ("train.log", "train_ddp_process_1.log"):
        assert sizes in (run / log).read_text(encoding="utf-8"), log
    assert len(list((run / "tensorboard").glob("events.out.tfevents.*"))) == 1
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    # 2 epochs x 2 batches; each process ran its own share of the data in step
    assert (checkpoint["epoch"], checkpoint["global_step"]) == (1, 4)
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]


@pytest.mark.parametrize(
    "tune", [[], ["tune=lr_find", "tune.num_training=6"]], ids=["fit", "lr_find_then_fit"]
)
def test_sweep_of_ddp_jobs_runs_each_job_once(
    tune: list[str], stripes_root: Path, tmp_path: Path
) -> None:
    """Each job's two processes share that job's dir; no process starts a sweep of its own,
    nor does the learning-rate finder, which fits too (#11300)."""
    result = run_module(
        "src.train", "-m", "freeze.trainable=[layer4],[fc]", "data=folder",
        f"data.root={stripes_root}", *TINY, "trainer.accelerator=cpu", "trainer.devices=2",
        *tune, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep,) = (tmp_path / "outputs" / "train_multirun").iterdir()
    # every folder but the sweep report's TensorBoard run is a job's: none from a relaunch
    jobs = sorted(p.name for p in sweep.iterdir() if p.is_dir() and p.name != "tensorboard")
    assert jobs == ["0", "1"]
    for job in jobs:
        assert (sweep / job / "train_ddp_process_1.log").is_file()
        checkpoint = torch.load(sweep / job / "checkpoints" / "last.ckpt", weights_only=True)
        assert checkpoint["global_step"] == 4
        assert not (sweep / job / "outputs").exists()
        assert (sweep / job / "lr_find.png").is_file() == bool(tune)
    assert not (tmp_path / "outputs" / "train").exists()  # no stray single runs either
    frozen = torch.load(sweep / "1" / "checkpoints" / "last.ckpt", weights_only=True)
    assert frozen["hyper_parameters"]["freeze"]["trainable"] == ["fc"]


def test_a_ddp_job_failing_in_every_process_does_not_stop_the_sweep(
    stripes_root: Path, tmp_path: Path
) -> None:
    """Job 0's loss becomes NaN in both processes: it is recorded as failed, its processes end
    cleanly (Lightning's child-process observer would kill the sweep on a failed extra process),
    job 1 trains and the sweep's report is written."""
    result = run_module(
        "src.train", "-m", "data=folder", f"data.root={stripes_root}", *TINY,
        "trainer.accelerator=cpu", "trainer.devices=2",
        "+callbacks.poison._target_=tests.helpers.fault_helpers.PoisonWeights",
        "+callbacks.poison.at_step=1,1000",
        cwd=tmp_path, timeout=400,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep,) = (tmp_path / "outputs" / "train_multirun").iterdir()
    failed = json.loads((sweep / "0" / "summary.json").read_text())
    assert failed["status"] == "failed" and "became nan at step 1" in failed["error"]
    completed = json.loads((sweep / "1" / "summary.json").read_text())
    assert completed["status"] == "finished", completed
    assert (
        torch.load(sweep / "1" / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 4
    )
    assert "| failed: " in (sweep / "report.md").read_text()


def test_a_ddp_job_failing_in_process_0_alone_does_not_stop_the_sweep(
    stripes_root: Path, tmp_path: Path
) -> None:
    """Job 0's process 0 fails alone (a failed write): process 1 waits for it in the next
    collective until process 0 ends it (`EXTRA_PROCESSES_GRACE_S`), not until the process-group
    timeout; the failure is recorded and job 1 trains."""
    result = run_module(
        "src.train", "-m", "data=folder", f"data.root={stripes_root}", *TINY,
        "trainer.accelerator=cpu", "trainer.devices=2",
        "+callbacks.fail._target_=tests.helpers.fault_helpers.FailInProcess",
        "+callbacks.fail.rank=0", "+callbacks.fail.at_step=1,1000",
        cwd=tmp_path, timeout=400,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep,) = (tmp_path / "outputs" / "train_multirun").iterdir()
    failed = json.loads((sweep / "0" / "summary.json").read_text())
    assert failed["status"] == "failed" and "No space left on device" in failed["error"]
    assert "Killing process" in (sweep / "0" / "train.log").read_text()
    completed = json.loads((sweep / "1" / "summary.json").read_text())
    assert completed["status"] == "finished", completed
    assert "| failed: " in (sweep / "report.md").read_text()
