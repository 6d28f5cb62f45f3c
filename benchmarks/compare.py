"""Time the project's training path against the tutorial loop and the raw compute ceiling.

    python -m benchmarks.compare [--data DIR | --zip FILE | --synthetic] [--model resnet34]
        [--freeze all] [--image-size 64] [--batch-size 32] [--reference-batch-size N]
        [--num-images 1000] [--epochs 2]
        [--workers N] [--project-overrides KEY=VALUE ...] [--json FILE]

All three runs happen in this process, one after the other, on the same files (one seeded 80/20
split), model, image size and batch size (the reference's may differ, with its learning rate
rescaled to match); each loop with its own loader workers unless --workers sets both; see
"Benchmarks" in the README.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from hydra.errors import ConfigCompositionException

from benchmarks.ceiling import run_ceiling
from benchmarks.cli import add_output_arguments, add_source_arguments, scratch_dir
from benchmarks.data import SHARED_WEIGHTS, make_split, resolve_source
from benchmarks.project import (
    compose_train_config,
    project_overrides,
    run_project,
    with_default_callbacks,
)
from benchmarks.reference import ReferenceSettings, run_reference
from benchmarks.report import environment, fmt, fmt_ratio, header_lines, publish, ratio
from benchmarks.timing import RunTimes
from src.config.resolvers import batch_lr_factor
from src.data.transforms import resize_size_for
from src.utils.devices import default_num_workers, runs_on_cpu
from src.utils.errors import UserError

log = logging.getLogger("benchmarks.compare")

#: `project`: training and validation alone; `project_defaults`: as `python -m src.train` runs by
#: default (checkpoints, NaN check, figures, loggers, the best checkpoint's report).
RUNS = ("reference", "project", "project_defaults", "ceiling")
#: The tutorial's `DataLoader(..., num_workers=4)`.
TUTORIAL_WORKERS = 4
#: Seeds the choice of images and their split (the project's default seed).
SPLIT_SEED = 42


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.compare", description=__doc__.split("\n\n")[0]
    )
    add_source_arguments(parser)
    parser.add_argument("--model", default="resnet34", help="torchvision model name")
    parser.add_argument("--freeze", default="all", help="freeze preset (conf/freeze)")
    parser.add_argument(
        "--weights",
        default="auto",
        help="state dict file, 'none' (random init) or 'auto' (the shared ResNet34 file for "
        "resnet34 when present)",
    )
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32, help="project's and ceiling's")
    parser.add_argument(
        "--reference-batch-size",
        type=int,
        default=None,
        help="the reference's batch size (default: --batch-size); its learning rate is the "
        "project's rescaled as optimizer=sgd scales it",
    )
    parser.add_argument("--num-images", type=int, default=1000, help="images used, per class even")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="loader workers of both loops (default: the project's own default, and the "
        "tutorial's 4 for the reference, at most one per core)",
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's)"
    )
    parser.add_argument("--ceiling-steps", type=int, default=20, help="timed steps per phase")
    parser.add_argument(
        "--runs", default=",".join(RUNS), help=f"comma-separated subset of {','.join(RUNS)}"
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="rounds of every run, interleaved; each run reports its median round (train img/s)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work dir (split, run dir)")
    add_output_arguments(parser, "freeze.cache_features=true")
    args = parser.parse_args(argv)
    runs = [name.strip() for name in args.runs.split(",") if name.strip()]
    if not runs or set(runs) - set(RUNS):
        parser.error(f"--runs takes a comma-separated subset of {','.join(RUNS)}")
    args.runs = [name for name in RUNS if name in runs]
    if args.repeats < 1:
        parser.error("--repeats takes a number of rounds, at least 1")
    if args.reference_batch_size is None:
        args.reference_batch_size = args.batch_size
    if min(args.batch_size, args.reference_batch_size) < 1:
        parser.error("--batch-size and --reference-batch-size take a number of images, at least 1")
    return args


def weights_file(choice: str, model: str) -> Path | None:
    if choice == "none":
        return None
    if choice == "auto":
        if model == "resnet34" and SHARED_WEIGHTS.is_file():
            return SHARED_WEIGHTS
        log.warning("No %s weights at %s: random weights (--weights PATH)", model, SHARED_WEIGHTS)
        return None
    return Path(choice)


def loader_workers(cfg) -> int:
    """`data.num_workers`, or the number the project's data module takes for null."""
    if cfg.data.num_workers is not None:
        return int(cfg.data.num_workers)
    return default_num_workers(model_on_cpu=runs_on_cpu(cfg.trainer))


def reference_workers(workers: int | None) -> int:
    """`--workers`, else the tutorial's `num_workers=4`, at most one per core."""
    return min(TUTORIAL_WORKERS, default_num_workers()) if workers is None else workers


def reference_settings(
    cfg, weights: Path | None, batch_size: int | None = None, workers: int | None = None
) -> ReferenceSettings:
    """The tutorial's hyper-parameters, taken from the project's config so both sides agree.

    At another batch size than the project's, the learning rate is rescaled by the rule
    `optimizer=sgd` follows (the tutorial's lr 0.001 at batch 4, 0.00283 at 32).
    """
    scheduler = (cfg.scheduler or {}).get("scheduler") or {}
    batch_size = int(cfg.data.batch_size) if batch_size is None else batch_size
    lr_scale = batch_lr_factor(batch_size, int(cfg.data.batch_size))
    return ReferenceSettings(
        model=cfg.model.name,
        trainable=cfg.freeze.trainable,
        image_size=cfg.data.image_size,
        resize_size=resize_size_for(cfg.data.image_size),
        batch_size=batch_size,
        workers=reference_workers(workers),
        epochs=cfg.trainer.max_epochs,
        lr=float(cfg.optimizer.lr) * lr_scale,
        momentum=float(cfg.optimizer.get("momentum") or 0.0),
        step_size=int(scheduler.get("step_size", 7)),
        gamma=float(scheduler.get("gamma", 0.1)),
        mean=list(cfg.model.mean),
        std=list(cfg.model.std),
        rotation_degrees=float(cfg.data.augment.rotation_degrees),
        weights=weights,
        seed=cfg.seed if cfg.seed is not None else 0,
        device="cpu" if runs_on_cpu(cfg.trainer) else "cuda",
    )


def median_run(runs: list[RunTimes]) -> RunTimes:
    """The round with the median train rate (the lower middle one for an even count)."""
    return sorted(runs, key=lambda times: times.train_rate)[(len(runs) - 1) // 2]


def summarise(settings: dict[str, Any], runs: dict[str, RunTimes]) -> dict[str, Any]:
    """Per-run numbers and the ratios the issue asks for."""

    def rates(name: str) -> tuple[float | None, float | None]:
        times = runs.get(name)
        return (None, None) if times is None else (times.train_rate, times.val_rate)

    pairs = [
        ("project", "reference"),
        ("project_defaults", "reference"),
        ("project", "ceiling"),
        ("project_defaults", "ceiling"),
    ]
    return {
        "settings": settings,
        "runs": {name: t.as_dict() for name, t in runs.items()},
        "ratios": {
            f"{a}_over_{b}": {
                "train": ratio(rates(a)[0], rates(b)[0]),
                "val": ratio(rates(a)[1], rates(b)[1]),
            }
            for a, b in pairs
            if a in runs and b in runs
        },
    }


def batch_sizes(settings: dict[str, Any]) -> str:
    reference = settings["reference_batch_size"]
    if reference == settings["batch_size"]:
        return str(reference)
    return f"{settings['batch_size']} (reference: {reference} at lr {settings['reference_lr']:g})"


def format_report(report: dict[str, Any]) -> str:
    s = report["settings"]
    lines = header_lines(report["environment"])
    lines += [
        f"data:    {s['source']}: {s['train_images']} train / {s['val_images']} val images, "
        f"classes {s['classes']}",
        f"model:   {s['model']}, freeze={s['freeze']}, weights {s['weights'] or 'random'}, "
        f"{s['image_size']} px, batch {batch_sizes(s)}, {s['epochs']} epoch(s), "
        f"{s['workers']} worker(s) (reference: {s['reference_workers']})",
    ]
    if s.get("repeats", 1) > 1:
        lines.append(f"median of {s['repeats']} interleaved rounds per run (train img/s)")
    if s["project_overrides"]:
        lines.append(f"project overrides: {' '.join(s['project_overrides'])}")
    lines += [
        "",
        f"{'run':<20}{'train img/s':>12}{'val img/s':>12}{'wall s':>10}{'val acc':>10}"
        f"{'data wait':>11}",
    ]
    for name, run in report["runs"].items():
        lines.append(
            f"{name:<20}{run['train_images_per_s']:>12.1f}{run['val_images_per_s']:>12.1f}"
            f"{run['wall_s']:>10.1f}{fmt(run['val_acc'], '.3f'):>10}"
            f"{fmt(run.get('data_wait_fraction'), '.1%'):>11}"
        )
    for name, pair in report["ratios"].items():
        label = name.replace("_over_", "/")
        lines.append(f"{label:<20}{fmt_ratio(pair['train']):>12}{fmt_ratio(pair['val']):>12}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the table, write the JSON; returns the report."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    weights = weights_file(args.weights, args.model)
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    with scratch_dir("tl-benchmark-", args.keep) as work_dir:
        source_root, source = resolve_source(
            args.data,
            args.zip,
            args.synthetic,
            args.cache_dir,
            args.num_images,
            # Generated photos at least twice the crop, as real photos mostly are.
            synthetic_size=max(160, 2 * args.image_size),
        )
        split = make_split(
            source_root, source, work_dir, args.num_images, SPLIT_SEED, args.cache_dir
        )
        overrides = project_overrides(
            split.root,
            args.model,
            args.freeze,
            args.image_size,
            args.batch_size,
            args.workers,
            args.epochs,
            weights,
            args.project_overrides,
        )
        cfg = compose_train_config(overrides, work_dir / "config")
        workers = loader_workers(cfg)
        reference = reference_settings(cfg, weights, args.reference_batch_size, args.workers)
        settings = {
            "source": source,
            "classes": split.classes,
            "train_images": len(split.train),
            "val_images": len(split.val),
            "model": args.model,
            "freeze": args.freeze,
            "weights": None if weights is None else str(weights),
            "image_size": args.image_size,
            "batch_size": args.batch_size,
            "reference_batch_size": args.reference_batch_size,
            "reference_lr": reference.lr,
            "epochs": args.epochs,
            "workers": workers,
            "reference_workers": reference.workers,
            "ceiling_steps": args.ceiling_steps,
            "project_overrides": list(args.project_overrides),
            "project_config_overrides": overrides,
        }
        rounds: dict[str, list[RunTimes]] = {name: [] for name in args.runs}
        for round_index in range(args.repeats):
            for name in args.runs:
                log.info("Running %s (round %d of %d)", name, round_index + 1, args.repeats)
                if name == "reference":
                    times = run_reference(split.root, reference)
                elif name in ("project", "project_defaults"):
                    chosen = overrides if name == "project" else with_default_callbacks(overrides)
                    times = run_project(chosen, work_dir / f"{name}-{round_index}")
                else:
                    times = run_ceiling(cfg, split.classes, args.ceiling_steps)
                rounds[name].append(times)
        settings["repeats"] = args.repeats
        settings["train_images_per_s_by_round"] = {
            name: [times.train_rate for times in runs] for name, runs in rounds.items()
        }
        settings["wall_s_by_round"] = {
            name: [times.wall_s for times in runs] for name, runs in rounds.items()
        }
        results = {name: median_run(runs) for name, runs in rounds.items()}
    report = {
        "environment": environment("benchmarks.compare", argv),
        **summarise(settings, results),
    }
    return publish(report, format_report(report), args.json)


def quiet_logging(verbose: bool) -> None:
    """Our progress lines only; the project's and Lightning's chatter stays out of the table."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if not verbose:
        for name in ("lightning", "lightning.pytorch", "lightning.fabric", "src"):
            logging.getLogger(name).setLevel(logging.WARNING)
        warnings.filterwarnings("ignore", module="lightning")


def cli(entry: Callable[[], object]) -> None:
    """Run `entry` as a command: a bad option or override ends with one line, no traceback."""
    quiet_logging("--verbose" in sys.argv)
    try:
        entry()
    except (ConfigCompositionException, UserError) as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    cli(main)
