"""What each training option buys: validation accuracy over several seeds and wall time, against
the project's defaults, and the time each needs to reach the tutorial loop's accuracy.

    python -m benchmarks.recipes --data ../shared/data/petimages-180 --seeds 0 1 2

Every recipe trains on the same split (drawn once, `SPLIT_SEED`) from the same weights; only
`seed=` changes between a recipe's runs (initial head, shuffling, augmentation). Runs use the
project's default callbacks and loggers, as `python -m src.train` does (but no progress bar).
The tutorial loop (batch 4, full fine-tune, `benchmarks.reference`) runs once, with the first
seed: its best validation accuracy is the target of the time-to-accuracy column, in the
manner of DAWNBench. A project run's wall time includes its data checks and set-up (and any
feature caching or LR search); the reference's starts when its loop is called.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.cli import add_output_arguments, add_source_arguments, scratch_dir
from benchmarks.compare import SPLIT_SEED, cli, reference_settings, weights_file
from benchmarks.data import make_split, resolve_source
from benchmarks.project import (
    compose_train_config,
    project_overrides,
    run_project,
    with_default_callbacks,
)
from benchmarks.reference import run_reference
from benchmarks.report import environment, fmt, header_lines, publish
from benchmarks.timing import RunTimes
from src.evaluation.intervals import CONFIDENCE
from src.sweeps.comparison import (
    format_difference,
    format_estimate,
    format_interval,
    time_to_reach,
)
from src.sweeps.statistics import compare_paired, estimate

log = logging.getLogger("benchmarks.recipes")


@dataclass(frozen=True)
class Recipe:
    """A named set of overrides, compared with `baseline` (another recipe's name)."""

    description: str
    overrides: tuple[str, ...] = ()
    freeze: str = "none"
    baseline: str | None = "default"


#: The options of the README's tables; `--recipes` picks some.
RECIPES: dict[str, Recipe] = {
    "default": Recipe("the project's defaults: full fine-tune, SGD, batch 32", baseline=None),
    "lr_find": Recipe("tune=lr_find: train at the LR finder's suggestion", ("tune=lr_find",)),
    "ema": Recipe(
        "weight_averaging=ema, decay 0.99 (short runs)",
        ("weight_averaging=ema", "weight_averaging.decay=0.99"),
    ),
    "trivial_erasing": Recipe(
        "TrivialAugment + RandomErasing 0.25",
        ("data.augment.policy=trivial", "data.augment.random_erasing=0.25"),
    ),
    "mixup_cutmix": Recipe(
        "MixUp 0.2 / CutMix 1.0", ("data.augment.mixup=0.2", "data.augment.cutmix=1.0")
    ),
    "progressive": Recipe(
        "progressive resizing: half size first, full size in the last epoch",
        ("data.progressive_resizing.enabled=true",),
    ),
    "frozen": Recipe(
        "freeze=all on augmented images (the tutorial's feature extractor)",
        ("freeze.cache_features=false",),
        freeze="all",
        baseline=None,
    ),
    "frozen_cached": Recipe(
        "freeze=all, cached features of center crops",
        ("freeze.cache_features=true", "freeze.cached_views=0"),
        freeze="all",
        baseline="frozen",
    ),
    "frozen_views_4": Recipe(
        "freeze=all, 4 cached augmented views per image",
        ("freeze.cache_features=true", "freeze.cached_views=4"),
        freeze="all",
        baseline="frozen",
    ),
    "frozen_views_16": Recipe(
        "freeze=all, 16 cached augmented views per image",
        ("freeze.cache_features=true", "freeze.cached_views=16"),
        freeze="all",
        baseline="frozen",
    ),
}


@dataclass
class RecipeResult:
    """One recipe's runs, in seed order."""

    name: str
    seeds: list[int] = field(default_factory=list)
    best_val_acc: list[float] = field(default_factory=list)
    wall_s: list[float] = field(default_factory=list)
    #: Seconds from the start to the first validation at or above the target (None: never).
    time_to_target_s: list[float | None] = field(default_factory=list)
    #: Per run: validation accuracy after each epoch, and the seconds from the start to it.
    epoch_val_acc: list[list[float]] = field(default_factory=list)
    epoch_end_s: list[list[float]] = field(default_factory=list)

    def add(self, seed: int, times: RunTimes, target: float | None) -> None:
        self.seeds.append(seed)
        self.best_val_acc.append(max(times.epoch_val_acc))
        self.wall_s.append(times.wall_s)
        self.time_to_target_s.append(time_to_target(times, target))
        self.epoch_val_acc.append(list(times.epoch_val_acc))
        self.epoch_end_s.append(list(times.epoch_end_s))

    def summary(self) -> dict[str, Any]:
        reached = [s for s in self.time_to_target_s if s is not None]
        best = estimate(self.best_val_acc)
        return {
            "seeds": self.seeds,
            "best_val_acc": self.best_val_acc,
            "mean_best_val_acc": best.mean,
            "sd_best_val_acc": best.sd,
            "ci_best_val_acc": None if best.low is None else [best.low, best.high],
            "wall_s": self.wall_s,
            "median_wall_s": statistics.median(self.wall_s),
            "time_to_target_s": self.time_to_target_s,
            "runs_reaching_target": len(reached),
            "median_time_to_target_s": statistics.median(reached) if reached else None,
            "epoch_val_acc": self.epoch_val_acc,
            "epoch_end_s": self.epoch_end_s,
        }


def time_to_target(times: RunTimes, target: float | None) -> float | None:
    """Seconds to the end of the first epoch whose validation accuracy reached `target` (the
    project's float32 accuracy within 1e-6 of the tutorial loop's float64 counts)."""
    if target is None:
        return None
    return time_to_reach(zip(times.epoch_val_acc, times.epoch_end_s, strict=True), target)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.recipes", description=__doc__.split("\n\n")[0]
    )
    add_source_arguments(parser)
    parser.add_argument("--recipes", nargs="+", choices=list(RECIPES), default=list(RECIPES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--model", default="resnet34")
    parser.add_argument(
        "--weights",
        default="auto",
        help="'auto' (../shared/data's ResNet34 file when present), 'none', or a path",
    )
    parser.add_argument("--num-images", type=int, default=1500)
    parser.add_argument("--val-fraction", type=float, default=0.3)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32, help="the project's default")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--workers", type=int, default=None, help="default: the project's")
    parser.add_argument(
        "--reference-batch-size", type=int, default=4, help="the tutorial loop's (0: no loop)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work dir")
    add_output_arguments(parser, "trainer.precision=bf16-mixed")
    return parser.parse_args(argv)


def overrides_for(
    args: argparse.Namespace, root: Path, weights: Path | None, freeze: str, extra: list[str]
) -> list[str]:
    """The project's overrides for the table's settings, then `extra`."""
    return project_overrides(
        root, args.model, freeze, args.image_size, args.batch_size, args.workers, args.epochs,
        weights, extra,
    )  # fmt: skip


def run_recipe(
    recipe: Recipe, seed: int, args: argparse.Namespace, root: Path, weights, work: Path
) -> RunTimes:
    extra = [f"seed={seed}", *recipe.overrides, *args.project_overrides]
    overrides = overrides_for(args, root, weights, recipe.freeze, extra)
    try:
        return run_project(with_default_callbacks(overrides), work)
    finally:
        shutil.rmtree(work, ignore_errors=True)  # checkpoints: hundreds of MB over a table


def by_seed(result: dict[str, Any]) -> dict[int, float]:
    return dict(zip(result["seeds"], result["best_val_acc"], strict=True))


def format_report(report: dict[str, Any]) -> str:
    s = report["settings"]
    lines = header_lines(report["environment"])
    lines += [
        f"{s['source']}: {s['train_images']} training and {s['val_images']} validation images "
        f"(one split for every run), {s['image_size']} px, {s['model']}, weights "
        f"{s['weights'] or 'random'}, {s['epochs']} epochs, seeds {s['seeds']}",
        "",
    ]
    target = report["target"]
    if target is not None:
        reference = report["reference"]
        lines.append(
            f"Tutorial loop (batch {s['reference_batch_size']}, seed {s['seeds'][0]}): best val "
            f"acc {target:.3f} in {reference['wall_s']:.0f} s; per epoch "
            + ", ".join(f"{a:.3f}" for a in reference["epoch_val_acc"])
        )
        lines.append("")
    level = f"{CONFIDENCE:.0%}"
    lines.append(
        f"| recipe | best val acc per seed | mean ± sd | {level} CI | vs its baseline, paired by "
        f"seed [{level} CI] | verdict | median wall s | to tutorial's best (runs reaching it) |"
    )
    lines.append("|---|---|---|---|---|---|---|---|")
    results = report["recipes"]
    for name, result in results.items():
        accuracy = estimate(result["best_val_acc"])
        baseline = RECIPES[name].baseline
        difference, verdict = "baseline", "-"
        if baseline in results:
            paired = compare_paired(by_seed(result), by_seed(results[baseline]))
            difference, verdict = f"{format_difference(paired)} vs {baseline}", paired.verdict
        reached = result["runs_reaching_target"]
        median = fmt(result["median_time_to_target_s"], ".0f", "never")
        unit = "" if result["median_time_to_target_s"] is None else " s"
        to_target = "-" if target is None else f"{median}{unit} ({reached}/{len(result['seeds'])})"
        per_seed = ", ".join(f"{a:.3f}" for a in result["best_val_acc"])
        lines.append(
            f"| {name}: {RECIPES[name].description} | {per_seed} | {format_estimate(accuracy)} "
            f"| {format_interval(accuracy)} | {difference} | {verdict} | "
            f"{result['median_wall_s']:.0f} | {to_target} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run every chosen recipe with every seed, print the table, write the JSON."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    weights = weights_file(args.weights, args.model)
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    with scratch_dir("tl-recipes-", args.keep) as work_dir:
        source_root, source = resolve_source(
            args.data, args.zip, args.synthetic, args.cache_dir, args.num_images
        )
        split = make_split(
            source_root,
            source,
            work_dir,
            args.num_images,
            SPLIT_SEED,
            args.cache_dir,
            args.val_fraction,
        )
        target, reference = None, None
        if args.reference_batch_size:
            overrides = overrides_for(args, split.root, weights, "none", [f"seed={args.seeds[0]}"])
            cfg = compose_train_config(overrides, work_dir / "config")
            settings = reference_settings(cfg, weights, args.reference_batch_size, args.workers)
            log.info("Running the tutorial loop")
            reference = run_reference(split.root, settings)
            target = max(reference.epoch_val_acc)
        results = {name: RecipeResult(name) for name in args.recipes}
        for seed in args.seeds:  # seeds outermost: a slow spell of the machine hits every recipe
            for name in args.recipes:
                log.info("Running %s, seed %d", name, seed)
                work = work_dir / f"{name}-{seed}"
                times = run_recipe(RECIPES[name], seed, args, split.root, weights, work)
                results[name].add(seed, times, target)
    report = {
        "environment": environment("benchmarks.recipes", argv),
        "settings": {
            "source": source,
            "train_images": len(split.train),
            "val_images": len(split.val),
            "model": args.model,
            "weights": None if weights is None else str(weights),
            "image_size": args.image_size,
            "batch_size": args.batch_size,
            "epochs": args.epochs,
            "seeds": args.seeds,
            "reference_batch_size": args.reference_batch_size,
            "project_overrides": list(args.project_overrides),
        },
        "target": target,
        "reference": None if reference is None else reference.as_dict(),
        "recipes": {name: result.summary() for name, result in results.items()},
    }
    return publish(report, format_report(report), args.json)


if __name__ == "__main__":
    cli(main)
