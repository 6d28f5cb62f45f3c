"""Generated label files: coloured shapes on noise, each shape present in an image one of its
labels (a red disc, a green square, a blue triangle), listed in a CSV as the project reads it."""

from __future__ import annotations

import csv
import random
from pathlib import Path

from PIL import Image, ImageDraw

#: Each label, its colour and how it is drawn.
SHAPES = {"disc": (220, 30, 30), "square": (30, 200, 40), "triangle": (40, 60, 230)}


def draw_shapes(labels: list[str], size: int, rng: random.Random) -> Image.Image:
    """Noise, then each labelled shape at a random place, a third of the image wide."""
    image = Image.frombytes("RGB", (size, size), rng.randbytes(size * size * 3))
    draw = ImageDraw.Draw(image)
    side = size // 3
    for label in labels:
        x, y = rng.randrange(0, size - side), rng.randrange(0, size - side)
        box = (x, y, x + side, y + side)
        color = SHAPES[label]
        if label == "disc":
            draw.ellipse(box, fill=color)
        elif label == "square":
            draw.rectangle(box, fill=color)
        else:
            draw.polygon([(x, y + side), (x + side // 2, y), (x + side, y + side)], fill=color)
    return image


def write_shapes_csv(
    folder: Path, count: int, size: int = 48, seed: int = 0, separator: str = " "
) -> Path:
    """`count` images in `folder/images/` and `folder/labels.csv` (columns path, labels); each
    shape is present with probability 1/2, every image has at least one."""
    rng = random.Random(seed)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for index in range(count):
        labels = [name for name in SHAPES if rng.random() < 0.5] or [rng.choice(list(SHAPES))]
        name = f"images/{index:04d}.png"
        draw_shapes(labels, size, rng).save(folder / name)
        rows.append((name, separator.join(labels)))
    path = folder / "labels.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "labels"])
        writer.writerows(rows)
    return path
