"""Cross-validation in a sweep (`-m data.fold=0,1,2,3,4`): for each group of jobs that differ in
their fold only, the mean and spread of their scores, every image's out-of-fold prediction in one
CSV, and the images whose given label the folds that did not train on them doubt most (likely
mislabelled, as confident learning ranks them), with thumbnails."""

from __future__ import annotations

import csv
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torchvision.transforms.v2 import functional

from src.data.images import UnusableImageError, read_rgb_tensor
from src.evaluation.figures import gallery_figure, save_png
from src.evaluation.report import PREDICTIONS_CSV
from src.sweeps.tables import Section

if TYPE_CHECKING:
    from src.sweeps.report import JobRow

FOLD = re.compile(r"^data\.fold=(\d+)$")
#: Images in the thumbnails of likely mislabelled images.
THUMBNAILS = 16
THUMBNAIL_SIZE = 96


@dataclass
class FoldGroup:
    """Jobs with the same settings but their fold."""

    settings: str
    jobs: list[JobRow]

    @property
    def scores(self) -> list[float]:
        return [job.best_score for job in self.jobs if job.best_score is not None]

    @property
    def name(self) -> str:
        return self.settings or "defaults"

    def cells(self) -> tuple[str, str, str]:
        """Settings, folds with a score, mean ± sd of the scores."""
        scores = self.scores
        spread = statistics.stdev(scores) if len(scores) > 1 else 0.0
        mean = f"{statistics.fmean(scores):.4f} ± {spread:.4f}" if scores else "-"
        return self.name, f"{len(scores)} of {len(self.jobs)}", mean


def fold_of(job: JobRow) -> int | None:
    return next((int(m.group(1)) for o in job.overrides if (m := FOLD.match(o))), None)


def fold_groups(rows: Sequence[JobRow]) -> list[FoldGroup]:
    """Groups of two or more jobs that override `data.fold` and agree on everything else."""
    groups: dict[str, list[JobRow]] = {}
    for row in rows:
        if fold_of(row) is not None:
            others = " ".join(o for o in row.overrides if not FOLD.match(o))
            groups.setdefault(others, []).append(row)
    return [FoldGroup(settings, jobs) for settings, jobs in groups.items() if len(jobs) > 1]


def out_of_fold(group: FoldGroup) -> list[dict[str, str]]:
    """Every validation image of the group's jobs with its fold and predictions."""
    rows = []
    for job in sorted(group.jobs, key=lambda job: fold_of(job) or 0):
        path = job.path / "evaluation" / PREDICTIONS_CSV
        if path.is_file():
            with path.open(newline="", encoding="utf-8") as handle:
                rows += [{"fold": str(fold_of(job)), **row} for row in csv.DictReader(handle)]
    return rows


def given_probability(row: dict[str, str]) -> float:
    """The lowest probability the model gave any of the image's given classes."""
    return min(float(row[f"p_{label}"]) for label in row["labels"].split(";"))


def likely_mislabelled(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """The out-of-fold rows, lowest probability of the given label first, each with that
    probability and the class the model found likeliest."""
    classes = [key[2:] for key in rows[0] if key.startswith("p_")] if rows else []
    ranked = []
    for row in rows:
        likeliest = max(classes, key=lambda name: float(row[f"p_{name}"]))
        ranked.append(
            {
                "path": row["path"],
                "fold": row["fold"],
                "labels": row["labels"],
                "probability_of_given": f"{given_probability(row):.6f}",
                "likeliest": likeliest,
            }
        )
    return sorted(ranked, key=lambda row: float(row["probability_of_given"]))


def write_rows(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["path"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def thumbnails(rows: list[dict[str, str]], path: Path) -> Path:
    """The first `THUMBNAILS` images of `rows`, titled given / likeliest and the probability."""
    images, titles = [], []
    for row in rows[:THUMBNAILS]:
        try:
            image = read_rgb_tensor(row["path"])
        except (OSError, UnusableImageError):
            continue
        images.append(functional.resize(image, [THUMBNAIL_SIZE, THUMBNAIL_SIZE], antialias=True))
        titles.append(
            f"given {row['labels']} / likely {row['likeliest']}\n"
            f"p(given) {float(row['probability_of_given']):.2f}"
        )
    figure = gallery_figure(images or [torch.zeros(3, 8, 8, dtype=torch.uint8)], titles or ["-"],
                            ["red"] * max(1, len(images)))  # fmt: skip
    return save_png(figure, path)


def cross_validation(rows: Sequence[JobRow], output: Path) -> tuple[list[Section], list[Path]]:
    """The report's sections and the files of every fold group of the sweep (none: none)."""
    groups = fold_groups(rows)
    if not groups:
        return [], []
    header = ("settings", "folds with a score", "mean ± sd")
    sections = [Section("Cross-validation", header, [group.cells() for group in groups])]
    files = []
    for index, group in enumerate(groups):
        suffix = "" if len(groups) == 1 else f"_{index}"
        predictions = out_of_fold(group)
        if not predictions:
            continue
        oof = write_rows(output / f"oof_predictions{suffix}.csv", predictions)
        ranked = likely_mislabelled(predictions)
        ranking = write_rows(output / f"likely_mislabelled{suffix}.csv", ranked)
        figure = thumbnails(ranked, output / f"likely_mislabelled{suffix}.png")
        files += [oof, ranking, figure]
        seen = len({row["path"] for row in predictions})
        summary = (
            f"`{group.name}`: {len(predictions)} out-of-fold predictions of {seen} images in "
            f"`{oof.name}`; the likeliest mislabelled first in `{ranking.name}`:"
        )
        table = [
            (
                Path(row["path"]).name,
                row["labels"],
                row["likeliest"],
                f"{float(row['probability_of_given']):.3f}",
            )
            for row in ranked[:10]
        ]
        header = ("image", "given", "likely", "p(given)")
        title = f"Likely mislabelled: {group.name}"
        sections.append(Section(title, header, table, before=[summary], figure=figure.name))
    return sections, files
