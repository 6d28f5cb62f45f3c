"""Intervals and verdicts of the sweep report from scores with known means and spreads."""

from __future__ import annotations

import math

import pytest

from src.evaluation.intervals import t_quantile
from src.sweeps.statistics import compare_paired, estimate


@pytest.mark.parametrize(
    ("df", "expected"),
    [(1, 12.7062), (2, 4.3027), (4, 2.7764), (9, 2.2622), (30, 2.0423)],
)
def test_t_quantile_matches_the_tables(df: int, expected: float) -> None:
    assert t_quantile(0.975, df) == pytest.approx(expected, abs=1e-4)


def test_estimate_gives_mean_sd_and_the_t_interval() -> None:
    value = estimate([0.80, 0.82, 0.84])
    half_width = 4.302653 * 0.02 / math.sqrt(3)
    assert value.n == 3 and value.mean == pytest.approx(0.82) and value.sd == pytest.approx(0.02)
    assert value.low == pytest.approx(0.82 - half_width, abs=1e-6)
    assert value.high == pytest.approx(0.82 + half_width, abs=1e-6)
    alone = estimate([0.9])
    assert (alone.mean, alone.sd, alone.low, alone.high) == (0.9, None, None, None)


BASELINE = {0: 0.70, 1: 0.80, 2: 0.90}  # a seed spread of 0.1 around 0.8


def shifted(by: dict[int, float]) -> dict[int, float]:
    return {seed: BASELINE[seed] + by[seed] for seed in by}


def test_a_steady_gain_within_the_seed_spread_is_better_when_paired() -> None:
    """+0.03 to +0.05 on each seed: unpaired, the groups' intervals overlap widely; paired by
    seed the difference's interval, 0.04 ± 4.30 * 0.01 / sqrt(3), excludes zero."""
    better = shifted({0: 0.03, 1: 0.04, 2: 0.05})
    group, base = estimate(list(better.values())), estimate(list(BASELINE.values()))
    assert group.low < base.high  # the unpaired intervals overlap
    paired = compare_paired(better, BASELINE)
    assert paired.verdict == "better" and paired.seeds == [0, 1, 2]
    assert paired.difference.mean == pytest.approx(0.04)
    assert paired.difference.low == pytest.approx(0.04 - 4.302653 * 0.01 / math.sqrt(3), abs=1e-6)
    assert compare_paired(BASELINE, better).verdict == "worse"
    assert compare_paired(better, BASELINE, higher_is_better=False).verdict == "worse"


def test_a_gain_no_larger_than_its_spread_cannot_be_told_apart() -> None:
    paired = compare_paired(shifted({0: 0.05, 1: -0.03, 2: 0.01}), BASELINE)
    assert paired.difference.mean == pytest.approx(0.01)
    assert paired.difference.low < 0 < paired.difference.high
    assert paired.verdict == "cannot tell apart with 3 seeds"


def test_only_shared_seeds_pair_and_one_is_too_few() -> None:
    partial = compare_paired({1: 0.85, 7: 0.99}, BASELINE)
    assert partial.seeds == [1] and partial.verdict == "no comparison possible with one seed"
    none = compare_paired({7: 0.99}, BASELINE)
    assert none.difference is None and "no seed in common" in none.verdict
