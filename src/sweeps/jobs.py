"""A run as a job of a Hydra sweep: its overrides, and a failure that is recorded, not fatal."""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from src.callbacks.run_summary import write_summary
from src.utils.devices import is_launcher_process
from src.utils.errors import find_user_error, one_line

log = logging.getLogger(__name__)

#: Set in the extra DDP processes of a sweep job: they run as single runs of that job.
SWEEP_JOB_PROCESS = "SWEEP_JOB_PROCESS"


def is_sweep_job() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def overrides_of_this_run() -> list[str]:
    """The command-line overrides of this run (or sweep job), as Hydra recorded them."""
    if not HydraConfig.initialized():
        return []
    return list(HydraConfig.get().overrides.task)


def record_failure_in_sweeps(
    task: Callable[[DictConfig], float | None],
) -> Callable[[DictConfig], float | None]:
    """In a sweep, a failing job is recorded in its summary.json and the sweep goes on; sweepers
    such as Optuna record a trial without a value as failed. The job's extra DDP processes log
    the failure and end cleanly (exit status 0: Lightning kills the whole sweep when one of them
    ends badly). Outside sweeps errors propagate."""

    @functools.wraps(task)
    def wrapper(cfg: DictConfig) -> float | None:
        try:
            return task(cfg)
        except Exception as error:
            if not (is_sweep_job() or os.environ.get(SWEEP_JOB_PROCESS)):
                raise
            message = one_line(find_user_error(error) or error) or type(error).__name__
            log.exception("Job failed: %s", message)
            if is_launcher_process():
                overrides = overrides_of_this_run()
                summary = {"overrides": overrides, "status": "failed", "error": message}
                write_summary(cfg.paths.output_dir, summary)
            return None

    return wrapper
