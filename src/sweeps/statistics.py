"""Is a difference between two settings real? The mean of repeated runs, its 95% confidence
interval (Student's t), and the difference to a baseline paired by seed with a plain verdict.

Runs of one setting differ by their seed alone (initial head, shuffling, augmentation), so a
difference between two settings counts only where it stands out from that spread. Pairing runs
of the same seed removes what the seed does to both (the same first batches, the same head).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

#: Two-sided confidence level of every interval.
CONFIDENCE = 0.95


def t_quantile(probability: float, df: int) -> float:
    """The `probability` quantile (above 0.5) of Student's t with `df` degrees of freedom.

    Bisection on the exact distribution function for whole degrees of freedom (Abramowitz and
    Stegun 26.7.3-4), so that no statistics library is needed.
    """
    if df < 1 or not 0.5 < probability < 1.0:
        raise ValueError(
            f"t_quantile needs df >= 1 and 0.5 < probability < 1, not {df}, {probability}"
        )
    central = 2.0 * probability - 1.0  # P(|T| <= t)
    low, high = 0.0, math.pi / 2  # theta = atan(t / sqrt(df)) is monotone in t
    for _ in range(100):
        middle = (low + high) / 2
        if _central_probability(middle, df) < central:
            low = middle
        else:
            high = middle
    return math.tan((low + high) / 2) * math.sqrt(df)


def _central_probability(theta: float, df: int) -> float:
    """P(|T| <= sqrt(df) tan(theta)) for Student's t with `df` degrees of freedom."""
    sine, cosine = math.sin(theta), math.cos(theta)
    if df % 2 == 1:
        term, total = cosine, cosine if df > 1 else 0.0
        for k in range(3, df - 1, 2):  # (2*4*..*(k-1)) / (3*5*..*k) cos^k
            term *= cosine * cosine * (k - 1) / k
            total += term
        return 2.0 / math.pi * (theta + sine * total)
    term, total = 1.0, 1.0
    for k in range(2, df - 1, 2):  # (1*3*..*(k-1)) / (2*4*..*k) cos^k
        term *= cosine * cosine * (k - 1) / k
        total += term
    return sine * total


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
    sd = statistics.stdev(values)
    half_width = t_quantile(0.5 + CONFIDENCE / 2, len(values) - 1) * sd / math.sqrt(len(values))
    return Estimate(len(values), mean, sd, mean - half_width, mean + half_width)


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
