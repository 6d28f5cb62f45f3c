"""Where the work runs: CPU or GPU, how many loader workers, which process launched the run."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import torch
from omegaconf import DictConfig

from src.utils.errors import UserError

#: Most loader workers chosen by default; more rarely help one training process.
MAX_DEFAULT_WORKERS = 8


def runs_on_cpu(trainer_cfg: DictConfig) -> bool:
    """Whether a Trainer built from `trainer_cfg` trains on the CPU on this machine."""
    accelerator = str(trainer_cfg.get("accelerator", "auto")).lower()
    return accelerator == "cpu" or (accelerator == "auto" and not torch.cuda.is_available())


def default_num_workers(model_on_cpu: bool = False, processes_on_node: int = 1) -> int:
    """One loader worker per CPU core available to this process, at most 8; when the model runs
    on the CPU too, only the cores its torch threads leave free: workers that compete with those
    threads slow training down more than they help (README, Benchmarks). With several training
    processes on the node (DDP), each gets its share of the cores they share."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cores = cores or 1
    share = cores // processes_sharing_cores(cores, processes_on_node)
    free = share - (torch.get_num_threads() if model_on_cpu else 0)
    return max(0, min(free, MAX_DEFAULT_WORKERS))


def processes_sharing_cores(cores: int, processes_on_node: int) -> int:
    """How many training processes share the `cores` this process may run on: every process of
    the node, unless SLURM pinned this task to its own CPUs (no more than `SLURM_CPUS_PER_TASK`
    of them); then the processes of this task only (one, as Lightning runs one task per device)."""
    per_task = _leading_int(os.environ.get("SLURM_CPUS_PER_TASK", ""))
    if per_task and cores <= per_task:
        tasks = _leading_int(
            os.environ.get("SLURM_NTASKS_PER_NODE") or os.environ.get("SLURM_TASKS_PER_NODE", "")
        )
        return max(1, processes_on_node // max(1, tasks or 1))
    return max(1, processes_on_node)


def _leading_int(value: str) -> int | None:
    """The number a SLURM variable starts with (`SLURM_TASKS_PER_NODE=4(x2)`: 4), or None."""
    digits = value[: len(value) - len(value.lstrip("0123456789"))]
    return int(digits) if digits else None


def local_device_index() -> int:
    """The index of the GPU this process trains on, known before Lightning sets it: its local
    rank (Lightning's launcher and torchrun set `LOCAL_RANK`, SLURM `SLURM_LOCALID`) among the
    devices it sees (a SLURM task that sees only its own GPU: 0)."""
    for name in ("LOCAL_RANK", "SLURM_LOCALID"):
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value) % max(1, torch.cuda.device_count())
    return 0


def computes_in_bf16(device_index: int | None = None) -> bool:
    """Whether the GPU (by default this process's) computes in bfloat16 natively: compute
    capability 8.0 (Ampere) and later, and ROCm GPUs. `torch.cuda.is_bf16_supported()` says yes
    where bfloat16 is only emulated (T4, V100, RTX 20xx: slower than float16), and probes the
    current device, cuda:0 in every process until Lightning sets its own; the capability is read
    without allocating anything."""
    if not torch.cuda.is_available():
        return False
    if torch.version.hip:
        return True
    index = local_device_index() if device_index is None else device_index
    return torch.cuda.get_device_capability(index)[0] >= 8


def process_rank() -> int:
    """This process's global rank when a launcher set one (torchrun's `RANK`, SLURM's
    `SLURM_PROCID`), else 0: the process that prepares shared files for the others."""
    for name in ("RANK", "SLURM_PROCID"):
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return 0


def wait_until(ready: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll `ready` until it holds; after `timeout_s`, a user error naming `what`."""
    deadline = time.monotonic() + timeout_s
    while not ready():
        if time.monotonic() > deadline:
            raise UserError(
                f"process {process_rank()} waited {timeout_s:.0f} s for {what} from process 0; "
                "check process 0's log, or that every node sees the same data dir"
            )
        time.sleep(min(1.0, timeout_s / 10))


#: Environment variables that give a process's rank: Lightning's DDP launcher, torchrun, SLURM.
RANK_VARIABLES = ("LOCAL_RANK", "NODE_RANK", "RANK", "SLURM_PROCID")


def is_launcher_process() -> bool:
    """False in every process but the first of a run: the extra processes Lightning's DDP
    launcher starts (they re-run the script), and the other tasks of `srun` or torchrun."""
    return all(os.environ.get(name, "0") == "0" for name in RANK_VARIABLES)
