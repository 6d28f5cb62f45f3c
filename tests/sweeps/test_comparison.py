"""The sweep report's comparison of settings, from generated summaries with known scores."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from src.report import main
from src.sweeps.report import build_report
from src.utils.errors import UserError
from tests.sweeps.test_report import PNG_SIGNATURE, make_job

#: The baseline's best val/acc by seed: a seed spread of 0.1 around 0.8.
BASELINE = (0.70, 0.80, 0.90)
#: Each learning rate's change to the baseline, by seed.
CHANGES = {
    "0.001": (0.0, 0.0, 0.0),
    "0.003": (0.03, 0.04, 0.05),  # paired: 0.04 ± 0.025, better
    "0.01": (0.05, -0.03, 0.01),  # paired: 0.01 ± 0.099, cannot tell
    "0.03": (-0.10, -0.12, -0.08),  # paired: -0.10 ± 0.050, worse
}


def summary(score: float, wall_s: float) -> dict[str, Any]:
    """A finished run whose first epoch scored 0.1 less (at 4 s) than its best (at 8 s)."""
    return {
        "status": "finished",
        "monitor": "val/acc",
        "best_score": score,
        "best_epoch": 1,
        "wall_time_s": wall_s,
        "curve": [
            {"epoch": 0, "score": round(score - 0.1, 6), "time_s": 4.0},
            {"epoch": 1, "score": score, "time_s": 8.0},
        ],
    }


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    """4 learning rates x 3 seeds in Hydra's job order (the last override varies fastest)."""
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    job = 0
    for lr, changes in CHANGES.items():
        for seed, (base, change) in enumerate(zip(BASELINE, changes, strict=True)):
            overrides = [f"optimizer.lr={lr}", f"seed={seed}", "trainer.max_epochs=2"]
            make_job(sweep, str(job), overrides, summary(round(base + change, 6), 10.0 + seed))
            job += 1
    return sweep


def group_rows(markdown: str) -> list[list[str]]:
    table = markdown.split("## Settings compared")[1].split("## Jobs")[0]
    lines = [line for line in table.splitlines() if line.startswith("| ")][1:]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]


def test_groups_intervals_and_verdicts(sweep: Path) -> None:
    rows = group_rows(build_report([sweep]).markdown)
    assert [row[:3] for row in rows] == [
        ["1", "optimizer.lr=0.001", "3"],
        ["2", "optimizer.lr=0.003", "3"],
        ["3", "optimizer.lr=0.01", "3"],
        ["4", "optimizer.lr=0.03", "3"],
    ]
    # mean ± sd and the t interval: 0.8 ± 4.303 * 0.1 / sqrt(3) = 0.8 ± 0.248
    assert rows[0][3:5] == ["0.800 ± 0.100", "[0.552, 1.048]"]
    assert rows[0][5:7] == ["baseline", "-"]
    assert rows[1][5:7] == ["+0.040 [+0.015, +0.065]", "better"]
    assert rows[2][5:7] == ["+0.010 [-0.089, +0.109]", "cannot tell apart with 3 seeds"]
    assert rows[3][5:7] == ["-0.100 [-0.150, -0.050]", "worse"]
    # median wall time; time to the baseline's mean 0.8: seed 0 never, seed 1 at 8 s, seed 2 at 4 s
    assert [row[7] for row in rows] == ["11"] * 4
    assert rows[0][8] == "6 (2/3)" and rows[1][8] == "6 (2/3)" and rows[3][8] == "8 (1/3)"
    assert (sweep / "comparison.png").read_bytes().startswith(PNG_SIGNATURE)


def test_baseline_and_target_chosen_by_the_user(sweep: Path) -> None:
    args = [str(sweep), "--baseline", "optimizer.lr=0.003", "--target", "0.9"]
    assert main(args) == 0
    rows = group_rows((sweep / "report.md").read_text())
    assert rows[0][5:7] == ["-0.040 [-0.065, -0.015]", "worse"]
    assert rows[1][5] == "baseline"
    assert "time to 0.900" in (sweep / "report.md").read_text()
    assert rows[1][8] == "8 (1/3)"  # best scores 0.73, 0.84, 0.95: only seed 2's reaches 0.9
    with pytest.raises(UserError, match="matches no group; give overrides that name one of"):
        build_report([sweep], baseline="optimizer.lr=0.5")


def test_a_failed_run_leaves_its_seed_out_of_the_pairs(sweep: Path) -> None:
    (sweep / "4" / "summary.json").write_text('{"status": "failed", "error": "nan loss"}')
    rows = group_rows(build_report([sweep]).markdown)
    assert rows[1][2] == "2 of 3 finished"
    # seeds 0 and 2 pair: +0.03 and +0.05, whose interval with 1 degree of freedom spans zero
    assert rows[1][5:7] == ["+0.040 [-0.087, +0.167]", "cannot tell apart with 2 seeds"]
