"""The settings a sweep compares: its runs grouped by their settings other than the seed, each
group's best score with its spread and confidence interval, the difference to a baseline group
paired by seed with a verdict, wall times and time to a target, and a figure of it all.

    python -m src.train -m seed=0,1,2 optimizer.lr=0.001,0.003

makes two groups of three runs. Runs that differ in a replicate setting (`REPLICATE_KEYS`: the
seed, and the fold of a cross-validation) are repeats of one setting; they pair across groups.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from src.evaluation.intervals import CONFIDENCE
from src.sweeps.statistics import (
    Estimate,
    PairedDifference,
    compare_paired,
    estimate,
)
from src.sweeps.tables import Section
from src.utils.errors import UserError

#: Overrides that repeat a setting rather than change it: runs that differ only in these form
#: one group, and runs of two groups with the same values pair up.
REPLICATE_KEYS = ("seed", "data.fold")

#: Scores this close count as reaching a target (metrics are logged in float32).
SAME_SCORE = 1e-6

REPORT_FIGURE = "comparison.png"


class Run(Protocol):
    """What a group needs of a job (`src.sweeps.report.JobRow`)."""

    job: str
    overrides: list[str]
    status: str
    monitor: str
    best_score: float | None
    wall_time_s: float | None
    curve: list[dict[str, float]]


def override_key(override: str) -> str:
    """`+optimizer.lr=0.1` -> `optimizer.lr`."""
    return override.split("=", 1)[0].lstrip("+~")


def replicate_of(run: Run) -> tuple[str, ...]:
    """The replicate overrides of a run (`("seed=0",)`): what pairs it with runs of other groups."""
    return tuple(o for o in run.overrides if override_key(o) in REPLICATE_KEYS)


def settings_of(run: Run) -> tuple[str, ...]:
    return tuple(o for o in run.overrides if override_key(o) not in REPLICATE_KEYS)


def has_score(run: Run) -> bool:
    return (
        run.status == "finished" and run.best_score is not None and not math.isnan(run.best_score)
    )


def time_to_reach(curve: Iterable[tuple[float, float]], target: float) -> float | None:
    """Seconds to the first (score, seconds) point at or above `target`; None if none is."""
    for score, seconds in curve:
        if score >= target - SAME_SCORE:
            return seconds
    return None


@dataclass
class Group:
    """Runs with the same settings; `label` names them by what differs from the other groups."""

    number: int
    settings: tuple[str, ...]
    label: str
    runs: list[Run] = field(default_factory=list)

    @property
    def scored(self) -> list[Run]:
        return [run for run in self.runs if has_score(run)]

    @property
    def scores(self) -> dict[tuple[str, ...], float]:
        """Best score by replicate (a repeated seed keeps its first run)."""
        scores: dict[tuple[str, ...], float] = {}
        for run in self.scored:
            scores.setdefault(replicate_of(run), float(run.best_score))  # type: ignore[arg-type]
        return scores

    @property
    def estimate(self) -> Estimate | None:
        scores = list(self.scores.values())
        return estimate(scores) if scores else None

    @property
    def median_wall_s(self) -> float | None:
        times = [run.wall_time_s for run in self.scored if run.wall_time_s is not None]
        return statistics.median(times) if times else None

    def times_to(self, target: float) -> list[float | None]:
        """Per scored run that recorded its curve: seconds to `target` (None: never reached)."""
        return [
            time_to_reach(((p["score"], p["time_s"]) for p in run.curve), target)
            for run in self.scored
            if run.curve
        ]


def group_runs(runs: Sequence[Run]) -> list[Group]:
    """Groups in the order of their first run; labels leave out what every run shares."""
    groups: dict[tuple[str, ...], Group] = {}
    for run in runs:
        settings = settings_of(run)
        if settings not in groups:
            groups[settings] = Group(len(groups) + 1, settings, "")
        groups[settings].runs.append(run)
    shared = set.intersection(*(set(g.settings) for g in groups.values())) if groups else set()
    for group in groups.values():
        group.label = " ".join(o for o in group.settings if o not in shared) or "(all the same)"
    return list(groups.values())


def choose_baseline(groups: Sequence[Group], spec: str | None) -> Group:
    """The first group, or the one group whose settings include every override of `spec`
    (`"optimizer.lr=0.001"`)."""
    if not spec:
        return groups[0]
    wanted = spec.split()
    matches = [group for group in groups if all(item in group.settings for item in wanted)]
    if len(matches) != 1:
        labels = "; ".join(group.label for group in groups)
        found = "no group" if not matches else f"{len(matches)} groups"
        raise UserError(
            f"report.baseline={spec!r} matches {found}; give overrides that name one of: {labels}"
        )
    return matches[0]


@dataclass
class Comparison:
    metric: str
    groups: list[Group]
    baseline: Group
    #: What "time to target" times: the given target, or the baseline's mean best score.
    target: float | None
    differences: dict[int, PairedDifference]

    @property
    def repeated(self) -> bool:
        """Whether any group ran more than one seed: else no comparison is possible."""
        return any(len(group.scores) > 1 for group in self.groups)


def compare(
    runs: Sequence[Run], baseline: str | None = None, target: float | None = None
) -> Comparison | None:
    """The groups of `runs` (in job order) against the baseline; None without any run."""
    groups = group_runs(runs)
    if not groups:
        return None
    base = choose_baseline(groups, baseline)
    if target is None and base.estimate is not None:
        target = base.estimate.mean
    differences = {
        group.number: compare_paired(group.scores, base.scores)
        for group in groups
        if group is not base
    }
    metrics = {run.monitor for run in runs}
    metric = metrics.pop() if len(metrics) == 1 else "score"
    return Comparison(metric, groups, base, target, differences)


def format_estimate(value: Estimate | None, signed: bool = False) -> str:
    """`0.805 ± 0.012` (sd), or the value alone for one run."""
    if value is None:
        return "-"
    mean = f"{value.mean:+.3f}" if signed else f"{value.mean:.3f}"
    return mean if value.sd is None else f"{mean} ± {value.sd:.3f}"


def format_interval(value: Estimate | None, signed: bool = False) -> str:
    if value is None or value.low is None or value.high is None:
        return "-"
    pattern = "+.3f" if signed else ".3f"
    return f"[{value.low:{pattern}}, {value.high:{pattern}}]"


def format_difference(difference: PairedDifference) -> str:
    """`+0.025 [+0.004, +0.046]`: the mean paired difference and its confidence interval."""
    if difference.difference is None:
        return "-"
    interval = format_interval(difference.difference, signed=True)
    mean = f"{difference.difference.mean:+.3f}"
    return mean if interval == "-" else f"{mean} {interval}"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def time_to_target_cell(group: Group, target: float | None) -> str:
    """Median seconds over the runs that reached the target, and how many did."""
    if target is None:
        return "-"
    times = group.times_to(target)
    if not times:
        return "-"
    reached = [t for t in times if t is not None]
    median = _seconds(statistics.median(reached)) if reached else "never"
    return f"{median} ({len(reached)}/{len(times)})"


def section(comparison: Comparison) -> Section:
    """The report's section: one row per group, the figure below it."""
    metric, base, target = comparison.metric, comparison.baseline, comparison.target
    level = f"{CONFIDENCE:.0%}"
    header = (
        "group",
        "settings",
        "runs",
        f"best {metric}: mean ± sd",
        f"{level} CI",
        f"difference to group {base.number}, paired by seed [{level} CI]",
        "verdict",
        "median wall time (s)",
        "time to " + ("target" if target is None else f"{target:.3f}") + " (s; runs reaching it)",
    )
    rows = []
    for group in comparison.groups:
        runs = str(len(group.scored))
        if len(group.scored) < len(group.runs):
            runs += f" of {len(group.runs)} finished"
        if group is base:
            difference, verdict = "baseline", "-"
        elif not group.scores:
            difference, verdict = "-", "no finished run"
        else:
            paired = comparison.differences[group.number]
            difference, verdict = format_difference(paired), paired.verdict
        rows.append(
            (
                str(group.number),
                group.label,
                runs,
                format_estimate(group.estimate),
                format_interval(group.estimate),
                difference,
                verdict,
                _seconds(group.median_wall_s),
                time_to_target_cell(group, target),
            )
        )
    keys = " and ".join(f"`{key}`" for key in REPLICATE_KEYS)
    before = [
        f"Runs grouped by their settings other than {keys}; each group's best `{metric}` "
        f"with its {level} confidence interval (Student's t), and each group against group "
        f"{base.number} over the seeds both ran. A verdict of better or worse means the "
        "interval of the paired difference excludes zero."
    ]
    if not comparison.repeated:
        before.append(
            "Every group has one run: no comparison is possible. Run each setting with several "
            "seeds (`seed=0,1,2`) to see whether differences are more than the seed's."
        )
    return Section("Settings compared", header, rows, before=before, figure=REPORT_FIGURE)


def write_figure(comparison: Comparison, path: Path) -> Path:
    """Each group's runs as dots, with their mean and confidence interval (Agg canvas)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    groups = comparison.groups
    figure = Figure(figsize=(max(5.0, 1.2 * len(groups) + 2), 4.5), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for index, group in enumerate(groups):
        scores = list(group.scores.values())
        offsets = [(i - (len(scores) - 1) / 2) * 0.06 for i in range(len(scores))]
        axes.scatter([index + o for o in offsets], scores, color="tab:blue", alpha=0.6, zorder=2)
        value = group.estimate
        if value is None:
            continue
        error: Any = None
        if value.low is not None and value.high is not None:
            error = [[value.mean - value.low], [value.high - value.mean]]
        axes.errorbar(
            index + 0.25, value.mean, yerr=error, fmt="D", color="black", capsize=5, zorder=3
        )
    base = comparison.baseline.estimate
    if base is not None:
        axes.axhline(base.mean, color="gray", linestyle="--", linewidth=1, zorder=1)
    axes.set_xlim(-0.5, len(groups) - 0.5)
    axes.set_xticks(range(len(groups)), [_wrapped(group) for group in groups], fontsize="small")
    level = f"{CONFIDENCE:.0%}"
    axes.set(
        ylabel=f"best {comparison.metric}",
        title=f"best {comparison.metric} per run (dots), mean and {level} CI (diamond, bars);\n"
        f"dashed: the mean of group {comparison.baseline.number}, the baseline",
    )
    axes.grid(axis="y", alpha=0.3)
    figure.savefig(path, dpi=100)
    return path


def _wrapped(group: Group, width: int = 24) -> str:
    """`1: optimizer.lr=0.001`, broken into lines between overrides."""
    lines, line = [], f"{group.number}:"
    for item in group.label.split():
        if len(line) + len(item) + 1 > width:
            lines.append(line)
            line = item
        else:
            line = f"{line} {item}"
    return "\n".join([*lines, line])
