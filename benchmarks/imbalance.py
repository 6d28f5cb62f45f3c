"""Class imbalance: balanced accuracy and macro F1 of no handling, the sampler
(`data.balance_classes`), class weights (`loss.class_weights=auto`) and focal loss (`loss=focal`),
trained on an imbalanced split and scored on a balanced one.

    python -m benchmarks.imbalance --data ../shared/data/petimages-180 --seeds 0 1 2

The training split holds `--majority` images of the second class and `--majority / --ratio` of
the first (1 cat per 9 dogs by default); validation holds `--val-per-class` of each. Every recipe
trains on the same split from the same weights; only `seed=` changes between runs. The scores
are those of each run's best checkpoint on validation (its report's metrics.json): balanced
accuracy is the mean of the per-class recalls.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import statistics
import sys
from pathlib import Path
from typing import Any

from benchmarks.cli import scratch_dir
from benchmarks.compare import cli, weights_file
from benchmarks.data import SHARED_FOLDER, link_folder, usable_samples
from benchmarks.project import run_project, with_default_callbacks
from benchmarks.report import environment, header_lines, publish

log = logging.getLogger("benchmarks.imbalance")

#: Name -> the overrides of each way to handle the imbalance.
RECIPES: dict[str, tuple[str, ...]] = {
    "none": (),
    "sampler": ("data.balance_classes=true",),
    "class_weights": ("loss.class_weights=auto",),
    "focal": ("loss=focal",),
}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.imbalance", description=__doc__)
    parser.add_argument("--data", type=Path, default=SHARED_FOLDER, help="two class folders")
    parser.add_argument("--weights", default="auto", help="auto (the shared file), none or PATH")
    parser.add_argument("--majority", type=int, default=270, help="training images, class 2")
    parser.add_argument("--ratio", type=int, default=9, help="class 2 images per class 1 image")
    parser.add_argument("--val-per-class", type=int, default=100)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES), choices=list(RECIPES))
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/tl-benchmarks-cache"))
    parser.add_argument("--json", type=Path, help="write the results here as JSON")
    parser.add_argument("--verbose", action="store_true")
    return parser.parse_args(argv)


def imbalanced_split(args: argparse.Namespace, work: Path) -> tuple[Path, dict[str, int]]:
    """`work/split/{train,val}/<class>/` links: the training split imbalanced, validation not."""
    minority = max(1, args.majority // args.ratio)
    wanted = {"train": (minority, args.majority), "val": (args.val_per_class,) * 2}
    total = max(wanted["train"]) + args.val_per_class
    classes, samples = usable_samples(args.data, 2 * total, seed=42, cache_dir=args.cache_dir)
    rng = random.Random(42)
    by_class = [[s for s in samples if s.label == label] for label in range(len(classes))]
    for members in by_class:
        rng.shuffle(members)
    root = work / "split"
    for side, counts in wanted.items():
        chosen = []
        for label, count in enumerate(counts):
            start = 0 if side == "val" else args.val_per_class
            chosen += by_class[label][start : start + count]
        link_folder(root / side, chosen, classes, args.data)
    return root, {f"train {name}": n for name, n in zip(classes, wanted["train"], strict=True)}


def scores(run_dir: Path) -> dict[str, float]:
    """Balanced accuracy and macro F1 of the run's best checkpoint on validation."""
    metrics = json.loads((run_dir / "evaluation" / "metrics.json").read_text())
    recalls = [row["recall"] for row in metrics["per_class"].values()]
    return {"balanced_accuracy": statistics.fmean(recalls), "macro_f1": metrics["macro_f1"]}


def measure(args: argparse.Namespace) -> dict[str, Any]:
    weights = weights_file(args.weights, "resnet34")
    results: dict[str, dict[str, list[float]]] = {}
    with scratch_dir("tl-imbalance-") as work:
        root, counts = imbalanced_split(args, work)
        for seed in args.seeds:
            for name in args.recipes:
                overrides = [
                    "data=folder", f"data.root={root}", "model.pretrained=false",
                    f"data.image_size={args.image_size}", f"trainer.max_epochs={args.epochs}",
                    "trainer.accelerator=cpu", f"seed={seed}", *RECIPES[name],
                ]  # fmt: skip
                if weights is not None:
                    overrides.append(f"model.weights_path={weights}")
                run_dir = work / f"{name}-{seed}"
                run_project(with_default_callbacks(overrides), run_dir)
                for metric, value in scores(run_dir / "run").items():
                    results.setdefault(name, {}).setdefault(metric, []).append(value)
                log.info("%s seed %d: %s", name, seed, results[name])
    return {"split": counts, "weights": str(weights), "recipes": results}


def table(report: dict[str, Any]) -> str:
    settings = report["settings"]
    lines = [
        *header_lines(report["environment"]),
        f"training split {report['results']['split']}, validation {settings['val_per_class']} "
        f"per class; {settings['image_size']} px, {settings['epochs']} epochs, seeds "
        f"{settings['seeds']}, weights {report['results']['weights']}",
        "",
        "| recipe | balanced accuracy, per seed | mean ± sd | macro F1, per seed | mean ± sd |",
        "|---|---|---|---|---|",
    ]
    for name, metrics in report["results"]["recipes"].items():
        cells = []
        for metric in ("balanced_accuracy", "macro_f1"):
            values = metrics[metric]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            cells += [
                ", ".join(f"{v:.3f}" for v in values),
                f"{statistics.fmean(values):.3f} ± {spread:.3f}",
            ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    report = {
        "environment": environment("benchmarks.imbalance", argv),
        "settings": {key: value for key, value in vars(args).items() if key != "json"},
        "results": measure(args),
    }
    report["settings"] = {
        k: str(v) if isinstance(v, Path) else v for k, v in report["settings"].items()
    }
    return publish(report, table(report), args.json)


if __name__ == "__main__":
    cli(main)
