"""A requeued job (SLURM: pre-emption, a time limit, `scontrol requeue`, Lightning's auto-requeue
on SIGUSR1; submitit, also `submitit_local`: its pre-emption signal, see `preemption`) starts the
same command again: it resumes from the newest checkpoint its earlier start wrote, instead of
training from scratch.

Each run in such a job records which job it belongs to (`cluster_job.json` in its run dir: the
job, the step, and the command-line overrides, so that two trainings in one batch script never
resume from each other). A restart finds the run dirs with the same record and resumes from the
newest of their checkpoints: `last.ckpt` (end of epoch, SIGTERM or pre-emption) or Lightning's
`hpc_ckpt_N.ckpt` (on the requeue signal).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from src.utils.devices import is_launcher_process
from src.utils.io import write_atomically

log = logging.getLogger(__name__)

#: The record of the cluster job a run belongs to, in its run dir.
JOB_FILE = "cluster_job.json"

#: How a `submitit_local` job's name starts (its controller's process id follows).
LOCAL_JOB = "local-"


def cluster_job() -> str | None:
    """This SLURM job (array jobs: the array task; srun steps: the step), or this `submitit_local`
    job: the same after a requeue; None outside both."""
    if os.environ.get("SLURM_ARRAY_JOB_ID"):
        job = f"{os.environ['SLURM_ARRAY_JOB_ID']}_{os.environ.get('SLURM_ARRAY_TASK_ID', '')}"
    else:
        job = os.environ.get("SLURM_JOB_ID", "")
    if not job:
        local = os.environ.get("SUBMITIT_LOCAL_JOB_ID")
        return f"{LOCAL_JOB}{local}" if local else None
    step = os.environ.get("SLURM_STEP_ID")
    return f"{job}.{step}" if step else job


def record_cluster_job(run_dir: Path, overrides: list[str]) -> None:
    """Write `cluster_job.json` into the run dir (first process only; nothing outside a job)."""
    job = cluster_job()
    if job is not None and is_launcher_process():
        record = json.dumps({"job": job, "overrides": sorted(overrides)}, indent=2)
        write_atomically(run_dir / JOB_FILE, record)


def requeued_checkpoint(log_dir: Path, run_dir: Path, overrides: list[str]) -> Path | None:
    """The newest checkpoint of this job's earlier starts with the same overrides (this run dir
    included, when `hydra.run.dir` is fixed or in a sweep), or None: outside a job, on a first
    start, or when the earlier start wrote no checkpoint."""
    job = cluster_job()
    if job is None:
        return None
    wanted = {"job": job, "overrides": sorted(overrides)}
    candidates = []
    # Process ids, which name local jobs, repeat on a machine: a local job looks in its own dir.
    earlier_runs = [] if job.startswith(LOCAL_JOB) else log_dir.glob(f"**/{JOB_FILE}")
    for record in [*earlier_runs, run_dir / JOB_FILE]:
        if not record.is_file() or json.loads(record.read_text(encoding="utf-8")) != wanted:
            continue
        earlier = record.parent
        candidates += [*earlier.glob("hpc_ckpt_*.ckpt"), *earlier.glob("checkpoints/last.ckpt")]
    if not candidates:
        return None
    newest = max(candidates, key=lambda path: path.stat().st_mtime)
    log.info("Job %s started again: resuming from %s", job, newest)
    return newest
