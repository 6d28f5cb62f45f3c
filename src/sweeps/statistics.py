"""Is a difference between two settings real? The mean of repeated runs, its 95% confidence
interval (Student's t), and the difference to a baseline paired by seed with a plain verdict.

Runs of one setting differ by their seed alone (initial head, shuffling, augmentation), so a
difference between two settings counts only where it stands out from that spread. Pairing runs
of the same seed removes what the seed does to both (the same first batches, the same head).
"""

from __future__ import annotations

import statistics
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

from src.evaluation.intervals import mean_interval


@dataclass(frozen=True)
class Estimate:
    """The mean of `n` values, their standard deviation and the mean's confidence interval (both
    None below two values)."""

    n: int
    mean: float
    sd: float | None
    low: float | None
    high: float | None


def estimate(values: Sequence[float]) -> Estimate:
    if not values:
        raise ValueError("no values to estimate from")
    mean = statistics.fmean(values)
    if len(values) < 2:
        return Estimate(len(values), mean, None, None, None)
    interval = mean_interval(values)
    low, high = interval.mean - interval.half_width, interval.mean + interval.half_width
    return Estimate(len(values), interval.mean, interval.sd, low, high)


#: The verdicts of `compare_paired`.
BETTER, WORSE = "better", "worse"


@dataclass(frozen=True)
class PairedDifference:
    """A setting minus the baseline, over the seeds both ran; `verdict` says it in words."""

    seeds: list[Hashable]
    difference: Estimate | None
    verdict: str


def compare_paired(
    runs: Mapping[Hashable, float],
    baseline: Mapping[Hashable, float],
    higher_is_better: bool = True,
) -> PairedDifference:
    """`runs` and `baseline` map a seed (or any key that pairs runs) to a run's score.

    "better" or "worse" when the confidence interval of the paired difference excludes zero;
    otherwise the two cannot be told apart with that many seeds. With fewer than two shared
    seeds there is no spread to judge by, and the verdict says so.
    """
    seeds = [seed for seed in runs if seed in baseline]
    if not seeds:
        return PairedDifference([], None, "no comparison possible: no seed in common with it")
    difference = estimate([runs[seed] - baseline[seed] for seed in seeds])
    if difference.low is None or difference.high is None:
        return PairedDifference(seeds, difference, "no comparison possible with one seed")
    if difference.low > 0 or difference.high < 0:
        improved = (difference.low > 0) == higher_is_better
        return PairedDifference(seeds, difference, BETTER if improved else WORSE)
    return PairedDifference(seeds, difference, f"cannot tell apart with {len(seeds)} seeds")
