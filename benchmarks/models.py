"""Training and evaluation speed of backbones on this machine: the project's `ImageClassifier`
stepping on in-memory batches (no data loading), for torchvision's and timm's models.

    python -m benchmarks.models [--models torchvision:resnet34 timm:resnet34 ...]
        [--image-size 224] [--batch-size 16] [--steps 3] [--rounds 3] [--json out.json]

Each round times every model once, in turn, so that the machine's drift touches all of them
alike; the table gives each model's median over the rounds and its ratio to the first model.
torchvision's and timm's ResNet34 do the same arithmetic, so their ratio shows the noise.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
from pathlib import Path
from typing import Any

from benchmarks.ceiling import run_ceiling
from benchmarks.cli import scratch_dir
from benchmarks.project import compose_train_config
from benchmarks.report import environment, fmt_ratio, header_lines, publish, ratio

DEFAULT_MODELS = [
    "torchvision:resnet34",
    "timm:resnet34",
    "timm:convnext_atto",
    "timm:efficientnet_b0",
    "timm:vit_tiny_patch16_224",
    "timm:mobilenetv3_small_100",
]


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=DEFAULT_MODELS, metavar="SOURCE:NAME")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per phase and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, help="write the results here as JSON")
    parser.add_argument("--verbose", action="store_true", help="show the project's own logging")
    return parser.parse_args(argv)


def model_overrides(spec: str, image_size: int, batch_size: int) -> list[str]:
    """`source:name` as the command line chooses it: random weights, every layer training."""
    source, _, name = spec.partition(":")
    if not name:
        raise SystemExit(f"--models takes SOURCE:NAME (torchvision:resnet34), not {spec!r}")
    chosen = ["model=timm"] if source == "timm" else [f"model.source={source}"]
    return [
        *chosen,
        f"model.name={name}",
        "model.pretrained=false",
        "data=folder",
        "data.root=unused",
        f"data.image_size={image_size}",
        f"data.batch_size={batch_size}",
        "trainer.accelerator=cpu",
    ]


def measure(args: argparse.Namespace) -> dict[str, Any]:
    rates: dict[str, dict[str, list[float]]] = {m: {"train": [], "eval": []} for m in args.models}
    with scratch_dir("tl-models-") as work:
        configs = {}
        for spec in args.models:
            overrides = model_overrides(spec, args.image_size, args.batch_size)
            configs[spec] = compose_train_config(overrides, work)
        for _ in range(args.rounds):
            for spec, cfg in configs.items():
                times = run_ceiling(cfg, ["a", "b"], args.steps, warmup=1)
                rates[spec]["train"].append(times.train_rate)
                rates[spec]["eval"].append(times.val_rate)
    first = args.models[0]
    runs = {}
    for spec, measured in rates.items():
        train, evaluate = statistics.median(measured["train"]), statistics.median(measured["eval"])
        runs[spec] = {
            "train_images_per_s": train,
            "eval_images_per_s": evaluate,
            "train_images_per_s_each_round": measured["train"],
            "eval_images_per_s_each_round": measured["eval"],
            "train_ratio": ratio(train, statistics.median(rates[first]["train"])),
            "eval_ratio": ratio(evaluate, statistics.median(rates[first]["eval"])),
        }
    return runs


def table(report: dict[str, Any]) -> str:
    settings, runs = report["settings"], report["runs"]
    first = next(iter(runs))
    lines = [
        *header_lines(report["environment"]),
        f"{settings['image_size']} px, batch {settings['batch_size']}, {settings['steps']} steps "
        f"per phase, median of {settings['rounds']} rounds; ratios to {first}",
        "",
        "| model | train images/s | ratio | eval images/s | ratio |",
        "|---|---|---|---|---|",
    ]
    for spec, run in runs.items():
        lines.append(
            f"| {spec} | {run['train_images_per_s']:.1f} | {fmt_ratio(run['train_ratio'])} | "
            f"{run['eval_images_per_s']:.1f} | {fmt_ratio(run['eval_ratio'])} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    report = {
        "environment": environment("benchmarks.models", argv),
        "settings": {
            "image_size": args.image_size,
            "batch_size": args.batch_size,
            "steps": args.steps,
            "rounds": args.rounds,
        },
        "runs": measure(args),
    }
    return publish(report, table(report), args.json)


if __name__ == "__main__":
    main()
