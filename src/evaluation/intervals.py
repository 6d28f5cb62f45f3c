"""How far a metric can be trusted across training runs: the mean of several seeds' values and
its 95% confidence interval (Student's t: few seeds make it wide, as it should be)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
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
class Interval:
    """`mean` ± `half_width` holds the metric's expected value with 95% confidence, from
    `count` runs (their standard deviation `sd`)."""

    mean: float
    half_width: float
    sd: float
    count: int

    def text(self, digits: int = 4) -> str:
        spread = f"sd {self.sd:.{digits}f}, {self.count} seeds"
        return f"{self.mean:.{digits}f} ± {self.half_width:.{digits}f} ({spread})"


def mean_interval(values: Sequence[float]) -> Interval:
    """The 95% t-interval of the mean of `values` (at least two)."""
    sd = statistics.stdev(values)
    quantile = t_quantile(0.5 + CONFIDENCE / 2, len(values) - 1)
    half_width = quantile * sd / math.sqrt(len(values))
    return Interval(statistics.fmean(values), half_width, sd, len(values))
