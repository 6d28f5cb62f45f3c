"""DDP inside a Hydra multirun job: start the extra processes as single runs of this job.

Lightning's DDP launcher re-runs the original command line for every extra process. In a sweep
that command holds `-m` and every swept value, so each extra process would start a sweep of its
own (Lightning issue #11300). While a sweep job trains, the launcher is given this job's own
overrides instead, and its dir as `hydra.run.dir`: its processes join that job and nothing else.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import get_original_cwd
from lightning.pytorch.strategies.launchers import subprocess_script

from src.sweeps.jobs import SWEEP_JOB_PROCESS, is_sweep_job

log = logging.getLogger(__name__)

#: Environment variables Lightning's launcher sets in the launching process.
LAUNCHER_VARIABLES = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")

#: How long a failed job's extra processes get to end by themselves (they fail too, together
#: with process 0, at the checks that stop every process) before they are killed.
EXTRA_PROCESSES_GRACE_S = 60


def sweep_job_command(local_rank: int, entry_point: str) -> tuple[Sequence[str], str]:
    """The command that makes process `local_rank` a plain run of the current sweep job:
    `python -m <entry_point>` with the job's overrides. (Not this process's own command: under a
    submitit launcher that is submitit's job runner.)"""
    hydra_config = HydraConfig.get()
    command = [sys.executable, "-m", entry_point]
    command += list(hydra_config.overrides.task)
    command += [
        f'hydra.run.dir="{hydra_config.runtime.output_dir}"',
        f"hydra.job.name=train_ddp_process_{local_rank}",
        "hydra.output_subdir=null",
    ]
    return command, get_original_cwd()


@contextlib.contextmanager
def launch_extra_processes_as_this_job(trainer: L.Trainer, entry_point: str) -> Iterator[None]:
    """Within this block, Lightning's launcher starts this job, not the whole sweep again (outside
    sweeps it changes nothing); the extra processes know they belong to a sweep job
    (`SWEEP_JOB_PROCESS`), so a failure ends them cleanly, as it ends this job.

    On leaving it, the job's process group is closed and the variables the launcher set are
    restored: the next job of the sweep runs in this same process, and with `LOCAL_RANK` still set
    Lightning would take its processes as started by someone else and wait for them forever. When
    the job failed, its extra processes are ended first (see `end_extra_processes`).
    """
    if not is_sweep_job():
        yield
        return
    original = subprocess_script._hydra_subprocess_cmd
    saved_environment = {
        name: os.environ.get(name) for name in (*LAUNCHER_VARIABLES, SWEEP_JOB_PROCESS)
    }
    subprocess_script._hydra_subprocess_cmd = functools.partial(
        sweep_job_command, entry_point=entry_point
    )
    os.environ[SWEEP_JOB_PROCESS] = "1"
    try:
        yield
    except BaseException:
        end_extra_processes(trainer)
        raise
    finally:
        subprocess_script._hydra_subprocess_cmd = original
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
        for name, value in saved_environment.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def end_extra_processes(trainer: L.Trainer) -> None:
    """After a failed job: its extra processes, taken from Lightning's child-process observer
    (which would kill this process, and with it the sweep, when one of them ends badly), are
    given `EXTRA_PROCESSES_GRACE_S` to end, then killed (one left waiting in a collective for
    this process would otherwise wait until the process-group timeout)."""
    procs: list[subprocess.Popen] = getattr(trainer.strategy.launcher, "procs", None) or []
    extra = list(procs)
    procs.clear()  # the observer watches this very list: empty, it stops
    for proc in extra:
        try:
            proc.wait(timeout=EXTRA_PROCESSES_GRACE_S)
        except subprocess.TimeoutExpired:
            log.warning("Killing process %d of the failed job: it did not end", proc.pid)
            proc.kill()
            proc.wait()
