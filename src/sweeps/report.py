"""Sweep report: the settings compared (`comparison`), then one row per job (from its
summary.json), as Markdown, HTML and CSV, with their figures, and as a TensorBoard run.

Written at the end of every multirun by `src.sweeps.hydra_callback.SweepReport`, and rebuilt on
demand by `python -m src.report`.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from src.callbacks.run_summary import SUMMARY_FILE
from src.sweeps.comparison import REPORT_FIGURE as COMPARISON_PNG
from src.sweeps.comparison import compare
from src.sweeps.comparison import section as comparison_section
from src.sweeps.comparison import write_figure as write_comparison_figure
from src.sweeps.folds import cross_validation
from src.sweeps.tables import Section, to_html, to_markdown
from src.utils.errors import UserError, one_line

METRICS_FILE = Path("csv") / "metrics.csv"
REPORT_CSV, REPORT_MD, REPORT_HTML = "report.csv", "report.md", "report.html"
REPORT_PNG = "val_acc.png"
REPORT_TITLE = "Sweep report"
#: The report's TensorBoard run, and the suffix of its event files (replaced on a rebuild).
TENSORBOARD_DIR, TENSORBOARD_SUFFIX = "tensorboard", ".sweep_report"

#: Columns of report.csv, in order.
COLUMNS = (
    "job",
    "overrides",
    "status",
    "error",
    "monitor",
    "best_score",
    "best_epoch",
    "final_val_loss",
    "trainable_params",
    "total_params",
    "wall_time_s",
    "train_images_per_s",
    "best_ckpt",
)


@dataclass
class JobRow:
    """One job of a sweep (or one run): what its summary.json says, or why it says nothing."""

    job: str
    path: Path
    overrides: list[str] = field(default_factory=list)
    status: str = "incomplete"
    error: str | None = None
    #: The validation metric the job's best checkpoint followed (val/acc, or val/map).
    monitor: str = "val/acc"
    best_score: float | None = None
    best_epoch: int | None = None
    final_val_loss: float | None = None
    trainable_params: int | None = None
    total_params: int | None = None
    wall_time_s: float | None = None
    train_images_per_s: float | None = None
    best_ckpt: str | None = None
    #: `monitor` after each epoch, and the seconds since the fit started.
    curve: list[dict[str, float]] = field(default_factory=list)

    def csv_values(self) -> dict[str, Any]:
        values = {name: getattr(self, name) for name in COLUMNS}
        values["overrides"] = " ".join(self.overrides)
        return {name: "" if value is None else value for name, value in values.items()}


@dataclass
class Report:
    rows: list[JobRow]
    markdown: str
    files: list[Path]


def is_run_dir(path: Path) -> bool:
    return (path / SUMMARY_FILE).is_file() or (path / ".hydra").is_dir()


def natural_key(text: str) -> list[Any]:
    """Job "10" after job "9"."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def sweep_jobs(sweep_dir: Path) -> list[Path]:
    """Job dirs of a sweep; a numbered dir without any record still counts (killed early)."""
    jobs = [
        child
        for child in sweep_dir.iterdir()
        if child.is_dir()
        and not child.name.startswith(".")
        and (is_run_dir(child) or child.name.isdigit())
    ]
    return sorted(jobs, key=lambda path: natural_key(path.name))


def is_sweep_dir(path: Path) -> bool:
    if not path.is_dir() or is_run_dir(path):
        return False
    return (path / "multirun.yaml").is_file() or any(is_run_dir(job) for job in sweep_jobs(path))


def job_dirs(paths: Sequence[str | Path]) -> list[Path]:
    """Every job dir that `paths` name, sweeps expanded; a path that is neither is a UserError."""
    found: list[Path] = []
    for given in paths:
        path = Path(given)
        if is_run_dir(path):
            found.append(path)
        elif is_sweep_dir(path):
            found.extend(sweep_jobs(path))
        else:
            raise UserError(
                f"{path} is neither a sweep dir (with multirun.yaml or job subfolders) "
                "nor a run dir (with summary.json or .hydra/)"
            )
    return found


def read_overrides(job_dir: Path) -> list[str]:
    """Hydra's record of the job's overrides, for jobs that never wrote a summary."""
    try:
        overrides = yaml.safe_load((job_dir / ".hydra" / "overrides.yaml").read_text("utf-8"))
    except (OSError, yaml.YAMLError):
        return []
    return [str(item) for item in overrides] if isinstance(overrides, list) else []


def read_job(job_dir: Path, name: str) -> JobRow:
    row = JobRow(job=name, path=job_dir, overrides=read_overrides(job_dir))
    summary_path = job_dir / SUMMARY_FILE
    if not summary_path.is_file():
        row.error = "no summary.json: killed, or still running"
        return row
    try:
        summary: dict[str, Any] = json.loads(summary_path.read_text("utf-8"))
        if not isinstance(summary, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as error:
        row.status, row.error = "unknown", one_line(f"unreadable summary.json: {error}")
        return row
    for key in COLUMNS[2:]:
        if summary.get(key) is not None:
            setattr(row, key, summary[key])
    if row.best_score is None and summary.get("best_val_acc") is not None:
        row.best_score = summary["best_val_acc"]  # a summary of a run before multi-label
    if isinstance(summary.get("curve"), list):
        row.curve = [
            p for p in summary["curve"] if isinstance(p, dict) and {"score", "time_s"} <= set(p)
        ]
    if isinstance(summary.get("overrides"), list):
        row.overrides = [str(item) for item in summary["overrides"]]
    row.status = str(summary.get("status") or "unknown")
    row.error = None if row.error is None else one_line(row.error)
    return row


def sort_rows(rows: list[JobRow]) -> list[JobRow]:
    """Finished jobs first, by best score descending; then the rest (failed, incomplete)."""

    def key(row: JobRow) -> tuple[Any, ...]:
        score = row.best_score
        has_score = score is not None and not math.isnan(score)
        return (
            row.status != "finished",
            not has_score,
            -score if has_score else 0.0,
            natural_key(row.job),
        )

    return sorted(rows, key=key)


def collect_rows(paths: Sequence[str | Path]) -> list[JobRow]:
    """Rows for the jobs of sweep dirs and run dirs, named relative to their common parent."""
    dirs = job_dirs(paths)
    if not dirs:
        return []
    base = Path(os.path.commonpath([str(d.resolve().parent) for d in dirs]))
    return sort_rows([read_job(d, d.resolve().relative_to(base).as_posix()) for d in dirs])


def common_overrides(rows: Sequence[JobRow]) -> list[str]:
    """Overrides every job shares (with two jobs or more): said once, not in every row."""
    if len(rows) < 2:
        return []
    shared = set.intersection(*(set(row.overrides) for row in rows))
    return [item for item in rows[0].overrides if item in shared]


def distinct_overrides(row: JobRow, common: Sequence[str]) -> str:
    return " ".join(item for item in row.overrides if item not in common)


def monitored(rows: Sequence[JobRow]) -> str:
    """The metric the jobs followed, if they all followed the same one (else `score`)."""
    metrics = {row.monitor for row in rows}
    return metrics.pop() if len(metrics) == 1 else "score"


def score_curve(job_dir: Path, metric: str) -> list[tuple[int, float]]:
    """(epoch, `metric`) from the job's CSVLogger file; the last value of an epoch wins
    (resume)."""
    path = job_dir / METRICS_FILE
    if not path.is_file():
        return []
    by_epoch: dict[int, float] = {}
    with path.open(newline="", encoding="utf-8") as file:
        for record in csv.DictReader(file):
            score, epoch = record.get(metric), record.get("epoch")
            if score and epoch:
                by_epoch[int(float(epoch))] = float(score)
    return sorted(by_epoch.items())


def write_csv(rows: Sequence[JobRow], path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(row.csv_values() for row in rows)
    return path


def _number(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _checkpoint(path: str | None, base: Path | None) -> str:
    """Shown relative to the report's dir when it lies inside it: shorter, still unambiguous."""
    if not path:
        return "-"
    if base is not None:
        try:
            return Path(path).resolve().relative_to(base.resolve()).as_posix()
        except ValueError:
            pass
    return path


def jobs_section(rows: Sequence[JobRow], base: Path | None = None) -> Section:
    """One row per job, best first; the overrides every job shares said once above."""
    common = common_overrides(rows)
    header = (
        "job",
        "overrides",
        "status",
        f"best {monitored(rows)}",
        "best epoch",
        "final val/loss",
        "trainable / total params",
        "wall time (s)",
        "train images/s",
        "best checkpoint",
    )
    table = []
    for row in rows:
        params = (
            "-"
            if row.trainable_params is None or row.total_params is None
            else f"{row.trainable_params:,} / {row.total_params:,}"
        )
        table.append(
            (
                row.job,
                distinct_overrides(row, common),
                f"{row.status}: {row.error}" if row.error else row.status,
                _number(row.best_score, 4),
                "-" if row.best_epoch is None else str(row.best_epoch),
                _number(row.final_val_loss, 4),
                params,
                _number(row.wall_time_s, 1),
                _number(row.train_images_per_s, 1),
                _checkpoint(row.best_ckpt, base),
            )
        )
    before = [f"Overrides of every job: `{' '.join(common)}`"] if common else []
    return Section("Jobs", header, table, before=before, figure=REPORT_PNG)


def write_plot(rows: Sequence[JobRow], path: Path) -> Path:
    """The jobs' metric (val/acc, or val/map) per epoch, one line per job that logged any (Agg
    canvas: no global backend)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(8, 5), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    common = common_overrides(rows)
    metric = monitored(rows)
    plotted = 0
    for row in sorted(rows, key=lambda row: natural_key(row.job)):
        curve = score_curve(row.path, row.monitor)
        if not curve:
            continue
        label = f"{row.job}: {distinct_overrides(row, common) or 'defaults'}"
        if row.status != "finished":
            label += f" ({row.status})"
        epochs, accuracies = zip(*curve, strict=True)
        axes.plot(epochs, accuracies, marker="o", label=label)
        plotted += 1
    axes.set(xlabel="epoch", ylabel=metric, title=f"{metric} per epoch")
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.grid(alpha=0.3)
    if plotted:
        axes.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
    else:
        axes.text(0.5, 0.5, f"no job logged {metric}", ha="center", transform=axes.transAxes)
    figure.savefig(path, dpi=100)
    return path


def write_tensorboard(directory: Path, markdown: str, figures: Sequence[Path]) -> Path:
    """The report's text and figures as a TensorBoard run of their own (`tensorboard --logdir
    outputs` lists it beside the jobs' runs); a rebuilt report replaces the earlier one."""
    import numpy as np
    from PIL import Image
    from torch.utils.tensorboard import SummaryWriter

    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob(f"events.out.tfevents.*{TENSORBOARD_SUFFIX}"):
        old.unlink()
    with SummaryWriter(str(directory), filename_suffix=TENSORBOARD_SUFFIX) as writer:
        writer.add_text("sweep/report", markdown, 0)
        for path in figures:
            with Image.open(path) as png:
                pixels = np.asarray(png.convert("RGB"))
            writer.add_image(f"sweep/{path.stem}", pixels, 0, dataformats="HWC")
    return directory


def build_report(
    paths: Sequence[str | Path],
    output: str | Path | None = None,
    baseline: str | None = None,
    target: float | None = None,
) -> Report:
    """Write report.md, report.html, report.csv, the figures and a TensorBoard run into `output`
    (default: the one sweep or run given). `baseline` and `target`: see `comparison.compare`."""
    if output is None:
        if len(paths) != 1:
            raise UserError("several paths: give --output DIR for the report")
        output = paths[0]
    output = Path(output)
    rows = collect_rows(paths)
    in_job_order = sorted(rows, key=lambda row: natural_key(row.job))
    comparison = compare(in_job_order, baseline, target)
    output.mkdir(parents=True, exist_ok=True)
    sections, figures = [], []
    if comparison is not None:
        sections.append(comparison_section(comparison))
        figures.append(write_comparison_figure(comparison, output / COMPARISON_PNG))
    sections.append(jobs_section(rows, base=output))
    figures.append(write_plot(rows, output / REPORT_PNG))
    folds, fold_files = cross_validation(rows, output)
    sections += folds
    markdown = to_markdown(sections, REPORT_TITLE)
    (output / REPORT_MD).write_text(markdown, encoding="utf-8")
    (output / REPORT_HTML).write_text(to_html(sections, REPORT_TITLE), encoding="utf-8")
    files = [
        output / REPORT_MD,
        output / REPORT_HTML,
        write_csv(rows, output / REPORT_CSV),
        *figures,
        *fold_files,
        write_tensorboard(output / TENSORBOARD_DIR, markdown, figures),
    ]
    return Report(rows=rows, markdown=markdown, files=files)
