"""Hydra multiruns: each job's record, DDP inside a job, and the report of a whole sweep.

- `jobs`: is this a sweep job, its overrides, a failed job recorded instead of ending the sweep.
- `ddp`: Lightning's DDP launcher starting this job's processes, not the sweep again (#11300).
- `report`: report.md / report.csv / val_acc.png from the jobs' summary.json files, written by
  the Hydra callback `SweepReport` when a multirun ends, and by `python -m src.report`.
"""

from src.sweeps.ddp import launch_extra_processes_as_this_job
from src.sweeps.hydra_callback import SweepReport
from src.sweeps.jobs import is_sweep_job, overrides_of_this_run, record_failure_in_sweeps
from src.sweeps.report import build_report

__all__ = [
    "SweepReport",
    "build_report",
    "is_sweep_job",
    "launch_extra_processes_as_this_job",
    "overrides_of_this_run",
    "record_failure_in_sweeps",
]
