"""A SLURM job that is requeued (pre-emption, `scontrol requeue`, Lightning's auto-requeue on
SIGUSR1) starts the same command again: it resumes from the newest checkpoint its earlier
start wrote, instead of training from scratch.

Each run under SLURM records which job it belongs to (`slurm_job.json` in its run dir: the job,
the step, and the command-line overrides, so that two trainings in one batch script never resume
from each other). A restart finds the run dirs with the same record and resumes from the newest
of their checkpoints: `last.ckpt` (end of epoch, or on SIGTERM) or Lightning's `hpc_ckpt_N.ckpt`
(on the requeue signal).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from src.utils.devices import is_launcher_process
from src.utils.io import write_atomically

log = logging.getLogger(__name__)

#: The record of the SLURM job a run belongs to, in its run dir.
JOB_FILE = "slurm_job.json"


def slurm_job() -> str | None:
    """This SLURM job (array jobs: the array task; srun steps: the step), the same after a
    requeue; None outside SLURM."""
    if os.environ.get("SLURM_ARRAY_JOB_ID"):
        job = f"{os.environ['SLURM_ARRAY_JOB_ID']}_{os.environ.get('SLURM_ARRAY_TASK_ID', '')}"
    else:
        job = os.environ.get("SLURM_JOB_ID", "")
    if not job:
        return None
    step = os.environ.get("SLURM_STEP_ID")
    return f"{job}.{step}" if step else job


def record_slurm_job(run_dir: Path, overrides: list[str]) -> None:
    """Write `slurm_job.json` into the run dir (first process only; nothing outside SLURM)."""
    job = slurm_job()
    if job is not None and is_launcher_process():
        record = json.dumps({"job": job, "overrides": sorted(overrides)}, indent=2)
        write_atomically(run_dir / JOB_FILE, record)


def requeued_checkpoint(log_dir: Path, run_dir: Path, overrides: list[str]) -> Path | None:
    """The newest checkpoint of this SLURM job's earlier starts with the same overrides (this
    run dir included, when `hydra.run.dir` is fixed), or None: outside SLURM, on a first start,
    or when the earlier start wrote no checkpoint."""
    job = slurm_job()
    if job is None:
        return None
    wanted = {"job": job, "overrides": sorted(overrides)}
    candidates = []
    for record in [*log_dir.glob(f"**/{JOB_FILE}"), run_dir / JOB_FILE]:
        if not record.is_file() or json.loads(record.read_text(encoding="utf-8")) != wanted:
            continue
        earlier = record.parent
        candidates += [*earlier.glob("hpc_ckpt_*.ckpt"), *earlier.glob("checkpoints/last.ckpt")]
    if not candidates:
        return None
    newest = max(candidates, key=lambda path: path.stat().st_mtime)
    log.info(
        "SLURM job %s started again (SLURM_RESTART_COUNT=%s): resuming from %s",
        job,
        os.environ.get("SLURM_RESTART_COUNT", "0"),
        newest,
    )
    return newest
