"""How far a metric can be trusted across training runs: the mean of several seeds' values and
its 95% confidence interval (Student's t: few seeds make it wide, as it should be)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

#: The two-sided 95% quantiles of Student's t with 1, 2, ..., 30 degrees of freedom.
T_95 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip
#: The normal distribution's, from which beyond 30 degrees of freedom t's follows (Cornish-Fisher).
Z_95 = 1.959964


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


def t_quantile_95(degrees_of_freedom: int) -> float:
    if degrees_of_freedom < 1:
        raise ValueError("an interval needs at least two values")
    if degrees_of_freedom <= len(T_95):
        return T_95[degrees_of_freedom - 1]
    z, df = Z_95, degrees_of_freedom
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def mean_interval(values: Sequence[float]) -> Interval:
    """The 95% t-interval of the mean of `values` (at least two)."""
    sd = statistics.stdev(values)
    half_width = t_quantile_95(len(values) - 1) * sd / math.sqrt(len(values))
    return Interval(statistics.fmean(values), half_width, sd, len(values))
