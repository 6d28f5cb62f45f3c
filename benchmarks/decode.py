"""Image decoding + transforms alone, in one process as in one loader worker: the tutorial's
PIL + transforms v1 pipeline against the project's dataset, on the same files.

    python -m benchmarks.decode [--data DIR | --zip FILE | --synthetic] [--num-images 200]
        [--image-size 224] [--repeats 3] [--threads 1] [--json FILE]

By default the raw-size JPEGs of ../shared/data/kagglecatsanddogs-mini.zip, else generated ones.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from torch.utils.data import Dataset
from torchvision import datasets

from benchmarks.cli import add_output_arguments, add_source_arguments, scratch_dir
from benchmarks.compare import cli, reference_settings
from benchmarks.data import make_split, resolve_source
from benchmarks.project import compose_train_config
from benchmarks.reference import data_transforms
from benchmarks.report import environment, fmt_ratio, header_lines, publish, ratio
from src.data.sources.folder import ImageFolderDataModule

log = logging.getLogger("benchmarks.decode")

PHASES = ("train", "val")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.decode", description=__doc__.split("\n\n")[0]
    )
    add_source_arguments(parser)
    parser.add_argument("--num-images", type=int, default=200, help="images used, per class even")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=3, help="passes per pipeline; best counts")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (1: as in a DataLoader worker)"
    )
    add_output_arguments(parser, "data.augment.enabled=false")
    return parser.parse_args(argv)


def pipelines(
    root: Path, image_size: int, extra: list[str], work_dir: Path
) -> dict[str, tuple[Dataset, Dataset]]:
    """Per phase, (the tutorial's `ImageFolder`, the project's dataset), both over `root`.

    The project's side is the data module exactly as `python -m src.train data=folder` builds
    it; the reference takes its settings (augmentation, normalisation) from the same config.
    """
    cfg = compose_train_config(
        [
            "data=folder",
            f"data.root={root}",
            f"data.image_size={image_size}",
            "data.num_workers=0",
            *extra,
        ],
        work_dir,
    )
    datamodule: ImageFolderDataModule = instantiate(cfg.data)
    datamodule.setup()
    tfms = data_transforms(reference_settings(cfg, weights=None))
    mean, std = list(cfg.model.mean), list(cfg.model.std)
    return {
        "train": (
            datasets.ImageFolder(root / "train", tfms["train"]),
            Normalised(datamodule.train_dataset(), mean, std),
        ),
        "val": (
            datasets.ImageFolder(root / "val", tfms["val"]),
            Normalised(datamodule.val_dataset(), mean, std),
        ),
    }


class Normalised(Dataset):
    """The project's uint8 images normalised to float here, image by image, so that both sides
    end at the same point, the tensor the network takes (training does it on the device, per
    batch, which costs less than this)."""

    def __init__(self, images: Dataset, mean: list[float], std: list[float]) -> None:
        self.images = images
        self.mean = torch.tensor(mean).view(-1, 1, 1) * 255
        self.std = torch.tensor(std).view(-1, 1, 1) * 255

    def __len__(self) -> int:
        return len(self.images)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image, label = self.images[index][:2]
        return (image.float() - self.mean) / self.std, label


def images_per_second(dataset: Dataset, repeats: int, warmup: int = 3) -> list[float]:
    """Rate of `dataset[i]` over every item, once per repeat, after a few untimed items."""
    count = len(dataset)  # type: ignore[arg-type]
    for index in range(min(warmup, count)):
        dataset[index]
    rates = []
    for _ in range(repeats):
        torch.manual_seed(0)
        started = time.perf_counter()
        for index in range(count):
            dataset[index]
        rates.append(count / (time.perf_counter() - started))
    return rates


def format_report(report: dict[str, Any]) -> str:
    s = report["settings"]
    lines = header_lines(report["environment"])
    lines += [
        f"data:    {s['source']}: {s['images']} images, classes {s['classes']}",
        f"{s['image_size']} px, best of {s['repeats']} pass(es), no loader workers; both end at "
        "normalised float tensors",
        "",
        f"{'pipeline':<10}{'reference img/s':>17}{'project img/s':>15}{'project/reference':>19}",
    ]
    for phase, row in report["results"].items():
        lines.append(
            f"{phase:<10}{row['reference']:>17.1f}{row['project']:>15.1f}"
            f"{fmt_ratio(row['project_over_reference']):>19}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Time both pipelines, print the table, write the JSON; returns the report."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    with scratch_dir("tl-decode-") as work_dir:
        source_root, source = resolve_source(
            args.data,
            args.zip,
            args.synthetic,
            args.cache_dir,
            args.num_images,
            prefer_zip=True,
            synthetic_size=400,
        )
        split = make_split(
            source_root, source, work_dir, args.num_images, 0, args.cache_dir, same_files=True
        )
        phases = pipelines(
            split.root, args.image_size, args.project_overrides, work_dir / "project"
        )
        rates: dict[str, dict[str, list[float]]] = {}
        for phase, (reference, project) in phases.items():
            log.info("Timing %s pipelines", phase)
            rates[phase] = {
                "reference": images_per_second(reference, args.repeats),
                "project": images_per_second(project, args.repeats),
            }
    results = {
        phase: {
            "reference": max(r["reference"]),
            "project": max(r["project"]),
            "project_over_reference": ratio(max(r["project"]), max(r["reference"])),
            "all_passes": r,
        }
        for phase, r in rates.items()
    }
    report = {
        "environment": environment("benchmarks.decode", argv),
        "settings": {
            "source": source,
            "classes": split.classes,
            "images": len(split.train),
            "image_size": args.image_size,
            "repeats": args.repeats,
            "threads": args.threads,
            "project_overrides": list(args.project_overrides),
        },
        "results": results,
    }
    return publish(report, format_report(report), args.json)


if __name__ == "__main__":
    cli(main)
