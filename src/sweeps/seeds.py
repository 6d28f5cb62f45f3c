"""A run inside a seeded sweep (`python -m src.train -m seed=0,1,2 ...`): the jobs that differ from
it only in `seed`, and the 95% interval of each metric of their best checkpoints' reports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from src.evaluation.intervals import Interval, mean_interval
from src.sweeps.report import is_sweep_dir, read_job, sweep_jobs

#: Where a run dir keeps its best checkpoint's report.
REPORT = Path("evaluation") / "metrics.json"


def _other_overrides(overrides: list[str]) -> tuple[frozenset[str], str | None]:
    """(every override but the seed's, the seed's value)."""
    seeds = [item.split("=", 1)[1] for item in overrides if item.startswith("seed=")]
    rest = frozenset(item for item in overrides if not item.startswith("seed="))
    return rest, seeds[0] if seeds else None


def seed_siblings(run_dir: Path) -> list[Path]:
    """The finished jobs of `run_dir`'s sweep (it included) that ran its overrides with another
    `seed`; empty when the run is not part of a sweep over seeds."""
    sweep = run_dir.resolve().parent
    if not is_sweep_dir(sweep):
        return []
    own, own_seed = _other_overrides(read_job(run_dir, run_dir.name).overrides)
    if own_seed is None:
        return []
    siblings, seeds = [], set()
    for job in sweep_jobs(sweep):
        row = read_job(job, job.name)
        rest, seed = _other_overrides(row.overrides)
        if rest == own and seed is not None and row.status == "finished" and seed not in seeds:
            siblings.append(job)
            seeds.add(seed)
    return siblings if len(siblings) > 1 else []


def seed_intervals(run_dir: Path, metrics: list[str]) -> tuple[dict[str, Interval], list[Path]]:
    """The 95% interval of each of `metrics` over the reports of `run_dir`'s seed siblings (those
    that have a report), and the runs they came from; nothing outside a seeded sweep."""
    reports: list[tuple[Path, dict[str, Any]]] = []
    for job in seed_siblings(run_dir):
        path = job / REPORT
        if path.is_file():
            reports.append((job, json.loads(path.read_text(encoding="utf-8"))))
    if len(reports) < 2:
        return {}, []
    intervals = {}
    for name in metrics:
        values = [report[name] for _, report in reports if report.get(name) is not None]
        if len(values) == len(reports):
            intervals[name] = mean_interval([float(value) for value in values])
    return intervals, [job for job, _ in reports]
