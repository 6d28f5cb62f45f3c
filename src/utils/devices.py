"""Where the work runs: CPU or GPU, how many loader workers, which process launched the run."""

from __future__ import annotations

import os

import torch
from omegaconf import DictConfig

#: Most loader workers chosen by default; more rarely help one training process.
MAX_DEFAULT_WORKERS = 8


def runs_on_cpu(trainer_cfg: DictConfig) -> bool:
    """Whether a Trainer built from `trainer_cfg` trains on the CPU on this machine."""
    accelerator = str(trainer_cfg.get("accelerator", "auto")).lower()
    return accelerator == "cpu" or (accelerator == "auto" and not torch.cuda.is_available())


def default_num_workers(model_on_cpu: bool = False) -> int:
    """One loader worker per CPU core available to this process, at most 8; when the model runs
    on the CPU too, only the cores its torch threads leave free: workers that compete with those
    threads slow training down more than they help (README, Benchmarks)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    free = (cores or 1) - (torch.get_num_threads() if model_on_cpu else 0)
    return max(0, min(free, MAX_DEFAULT_WORKERS))


def is_launcher_process() -> bool:
    """False in the extra processes Lightning's DDP launcher starts (they re-run the script)."""
    return os.environ.get("LOCAL_RANK", "0") == "0" and os.environ.get("NODE_RANK", "0") == "0"
