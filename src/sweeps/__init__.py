"""Hydra multiruns: each job's record, DDP inside a job, and the report of a whole sweep.

- `jobs`: is this a sweep job, its overrides, a failed job recorded instead of ending the sweep.
- `ddp`: Lightning's DDP launcher starting this job's processes, not the sweep again (#11300).
- `report`: report.md / report.csv / val_acc.png from the jobs' summary.json files, written by
  the Hydra callback `SweepReport` (`hydra_callback`) when a multirun ends, and by
  `python -m src.report`.
"""
