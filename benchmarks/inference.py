"""Inference speed of a trained model: PyTorch eager against the exported ONNX file run by
onnxruntime, on the same images, batch 1 and 32, in one invocation.

    python -m benchmarks.inference --ckpt outputs/train/<run>/checkpoints/best.ckpt
        [--images DIR] [--batch-sizes 1 32] [--repeats 5] [--json FILE]

The images are decoded and resized once beforehand: only the model's time is measured. Each
figure is the median of `--repeats` timed rounds over the same images.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.report import environment, fmt_ratio, header_lines, ratio, write_json
from src.data.images import DEFAULT_MAX_PIXELS
from src.data.samples import find_image_files
from src.models.checkpoint import load_checkpoint
from src.serving.classifiers import OnnxClassifier
from src.serving.onnx_export import export_verified, parity_images, serving_metadata

log = logging.getLogger("benchmarks.inference")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.inference", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--ckpt", type=Path, required=True, help="a checkpoint of this project")
    parser.add_argument("--images", type=Path, help="real images (default: the checkpoint's data)")
    parser.add_argument("--num-images", type=int, default=64, help="images per timed round")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds; the median counts")
    parser.add_argument("--json", type=Path, help="write the results here as JSON")
    return parser.parse_args(argv)


def images_per_second(classify, images: torch.Tensor, batch_size: int, repeats: int) -> float:
    """Median over `repeats` rounds of the images/s of `classify` over `images` in batches."""
    batches = list(images.split(batch_size))
    classify(batches[0])  # warm-up: lazy initialisation, allocator
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        for batch in batches:
            classify(batch)
        rates.append(len(images) / (time.perf_counter() - started))
    return statistics.median(rates)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    model, trained_on = load_checkpoint(args.ckpt)
    size, crop_pct = int(model.hparams.image_size), float(model.hparams.crop_pct)
    root = args.images or Path((trained_on or {}).get("root", ""))
    files = find_image_files(root, "--images")
    images = parity_images(files, size, crop_pct, DEFAULT_MAX_PIXELS, args.num_images)
    settings = model.hparams.model
    metadata = serving_metadata(
        list(model.class_names), size, crop_pct, settings["mean"], settings["std"]
    )
    with tempfile.TemporaryDirectory() as work:
        onnx_file = Path(work) / "model.onnx"
        export_verified(model, metadata, images[:8], onnx_file)
        onnx = OnnxClassifier(onnx_file)

        def eager(batch: torch.Tensor) -> torch.Tensor:
            with torch.inference_mode():
                return model(batch)

        results = []
        for batch_size in args.batch_sizes:
            torch_rate = images_per_second(eager, images, batch_size, args.repeats)
            onnx_rate = images_per_second(onnx.probabilities, images, batch_size, args.repeats)
            results.append(
                {"batch_size": batch_size, "pytorch_eager": torch_rate, "onnxruntime": onnx_rate}
            )
    env = environment("benchmarks.inference", argv)
    print("\n".join(header_lines(env)))
    print(f"{settings['name']} at {size} px, {len(images)} images of {root}, CPU, images/s:")
    print("| batch | PyTorch eager | onnxruntime | ratio |")
    print("|---|---|---|---|")
    for row in results:
        onnx_ratio = fmt_ratio(ratio(row["onnxruntime"], row["pytorch_eager"]))
        print(
            f"| {row['batch_size']} | {row['pytorch_eager']:.1f} | {row['onnxruntime']:.1f} "
            f"| {onnx_ratio} |"
        )
    if args.json:
        write_json(args.json, {"environment": env, "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
