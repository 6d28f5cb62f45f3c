"""A requeued SLURM job resumes from the checkpoint its first start wrote (SLURM's variables set
by hand, the requeue signal sent for real, `scontrol` stood in for)."""

from __future__ import annotations

import csv
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.helpers import TINY, module_env

pytestmark = pytest.mark.slow

SLURM_JOB = {"SLURM_NTASKS": "1", "SLURM_JOB_NAME": "train", "SLURM_JOB_ID": "42",
             "SLURM_NODEID": "0", "SLURM_PROCID": "0", "SLURM_LOCALID": "0"}  # fmt: skip


def start(tmp_path: Path, stripes_root: Path, restart_count: int, *extra: str):
    """One start of the job: the same command each time, as SLURM runs it again."""
    scontrol = tmp_path / "bin" / "scontrol"
    scontrol.parent.mkdir(exist_ok=True)
    scontrol.write_text(f'#!/bin/sh\necho "$@" >> {tmp_path / "scontrol.log"}\n')
    scontrol.chmod(scontrol.stat().st_mode | stat.S_IEXEC)
    env = {
        **module_env(),
        **SLURM_JOB,
        "SLURM_RESTART_COUNT": str(restart_count),
        "PATH": f"{scontrol.parent}{os.pathsep}{os.environ['PATH']}",
    }
    command = [
        sys.executable, "-m", "src.train", "data=folder", f"data.root={stripes_root}", *TINY,
        "trainer.max_epochs=3",
        "+callbacks.requeue._target_=tests.helpers.fault_helpers.RequeueSignalThenDie",
        "+callbacks.requeue.at_step=3", *extra,
    ]  # fmt: skip
    return subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize("run_dir", ["timestamped", "fixed"])
def test_a_requeued_job_resumes_from_its_own_checkpoint(
    run_dir: str, stripes_root: Path, tmp_path: Path
) -> None:
    extra = ["hydra.run.dir=outputs/train/fixed"] if run_dir == "fixed" else []
    first = start(tmp_path, stripes_root, 0, *extra)
    assert first.returncode == 137, first.stderr[-3000:]  # killed after the requeue signal
    (first_dir,) = (tmp_path / "outputs" / "train").iterdir()
    hpc = first_dir / "hpc_ckpt_1.ckpt"
    assert torch.load(hpc, weights_only=True)["global_step"] == 3
    assert "requeue 42" in (tmp_path / "scontrol.log").read_text()
    assert json.loads((first_dir / "cluster_job.json").read_text())["job"] == "42"

    again = start(tmp_path, stripes_root, 1, *extra)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"resuming from {hpc.relative_to(tmp_path)}" in again.stdout
    runs = sorted((tmp_path / "outputs" / "train").iterdir())
    assert len(runs) == (2 if run_dir == "timestamped" else 1)
    last = torch.load(runs[-1] / "checkpoints" / "last.ckpt", weights_only=True)
    assert (last["epoch"], last["global_step"]) == (2, 6)  # went on from step 3, to the end
    rows = list(csv.DictReader((runs[-1] / "csv" / "metrics.csv").open()))
    assert {row["epoch"] for row in rows if row.get("val/acc")} == {"1", "2"}  # not from scratch


def test_outside_slurm_nothing_is_recorded(make_config, folder_overrides) -> None:
    from src.train import train

    cfg = make_config(folder_overrides)
    train(cfg)
    assert not (Path(cfg.paths.output_dir) / "cluster_job.json").exists()
