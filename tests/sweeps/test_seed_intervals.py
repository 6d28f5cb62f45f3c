"""A run of a seeded sweep: its model card gives each metric's 95% interval over the seeds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from scipy import stats

from src.evaluation.intervals import mean_interval
from src.sweeps.seeds import seed_intervals


def write_job(sweep: Path, name: str, overrides: list[str], accuracy: float, status: str) -> Path:
    """A job dir as a sweep leaves it: Hydra's overrides, summary.json and its best checkpoint's
    report."""
    job = sweep / name
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (job / "summary.json").write_text(json.dumps({"status": status, "overrides": overrides}))
    (job / "evaluation").mkdir()
    (job / "evaluation" / "metrics.json").write_text(json.dumps({"accuracy": accuracy}))
    return job


@pytest.mark.parametrize("count", [2, 3, 5, 40])
def test_the_interval_is_students_t_of_the_mean(count: int) -> None:
    values = [0.8 + 0.01 * (index % 7) for index in range(count)]
    interval = mean_interval(values)
    low, high = stats.t.interval(0.95, count - 1, loc=stats.tmean(values), scale=stats.sem(values))
    assert interval.mean == pytest.approx((low + high) / 2)
    assert interval.half_width == pytest.approx((high - low) / 2, rel=1e-3)


def test_only_the_runs_that_differ_in_seed_alone_count(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    jobs = [
        write_job(sweep, str(index), ["model.name=resnet18", f"seed={index}"], accuracy, status)
        for index, (accuracy, status) in enumerate(
            [(0.80, "finished"), (0.84, "finished"), (0.88, "finished"), (0.10, "failed")]
        )
    ]
    write_job(sweep, "4", ["model.name=resnet50", "seed=0"], 0.99, "finished")
    intervals, runs = seed_intervals(jobs[0], ["accuracy", "loss"])
    assert runs == jobs[:3]  # not the failed one, not the other network
    assert intervals["accuracy"] == mean_interval([0.80, 0.84, 0.88])
    assert "loss" not in intervals  # not in the reports: no interval
    assert seed_intervals(sweep / "4", ["accuracy"]) == ({}, [])  # one seed: no interval
