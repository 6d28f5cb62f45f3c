"""The images both sides are timed on: one seeded split, materialised as symlink folders.

Building the split here (not in either pipeline) guarantees the reference `ImageFolder` and the
project's data module read exactly the same files.
"""

from __future__ import annotations

import logging
import os
import random
from dataclasses import dataclass
from pathlib import Path

from src.data.image_checks import find_unusable
from src.data.images import DEFAULT_MAX_PIXELS
from src.data.samples import Sample
from src.data.sources.cats_dogs import prepare_cats_dogs
from src.data.sources.folder import collect_samples, find_classes
from src.data.sources.synthetic import CLASSES, draw_image
from src.data.split import stratified_split

log = logging.getLogger(__name__)

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SHARED_FOLDER = SHARED_DATA / "petimages-180"
SHARED_ZIP = SHARED_DATA / "kagglecatsanddogs-mini.zip"
SHARED_WEIGHTS = SHARED_DATA / "resnet34-petimages-64px-fp16.pth"


@dataclass(frozen=True)
class Split:
    """`root/train/<class>/` and `root/val/<class>/` of symlinks, and what they point to."""

    root: Path
    classes: list[str]
    train: list[Sample]
    val: list[Sample]
    source: str


#: JPEG kinds of `generate_jpegs(mixed=True)`, in turn: Pillow's save arguments and mode.
JPEG_KINDS = (
    ("baseline 4:2:0", {}, "RGB"),
    ("progressive", {"progressive": True}, "RGB"),
    ("grayscale", {}, "L"),
    ("baseline 4:4:4", {"subsampling": 0}, "RGB"),
)


def generate_jpegs(
    dest: Path, images_per_class: int, size: int, seed: int = 0, mixed: bool = False
) -> Path:
    """Stripe images (the project's synthetic classes) saved as JPEGs, like photos on disk; with
    `mixed`, every kind of `JPEG_KINDS` in turn (decoders take different paths for them)."""
    rng = random.Random(seed)
    for kind in CLASSES:
        folder = dest / kind
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(images_per_class):
            path = folder / f"{index:05d}.jpg"
            if path.is_file():
                continue
            _, options, mode = JPEG_KINDS[index % len(JPEG_KINDS)] if mixed else JPEG_KINDS[0]
            draw_image(kind, size, rng).convert(mode).save(path, quality=90, **options)
    return dest


def resolve_source(
    data: Path | None,
    archive: Path | None,
    synthetic: bool,
    cache_dir: Path,
    num_images: int,
    prefer_zip: bool = False,
    synthetic_size: int = 160,
) -> tuple[Path, str]:
    """The folder of class folders to use, and a line saying where it came from.

    Explicit choices win; otherwise the shared photos (`prefer_zip`: the raw-size ones in the
    archive), otherwise generated JPEGs.
    """
    if data is not None:
        return data, str(data)
    if archive is None and not synthetic and prefer_zip and SHARED_ZIP.is_file():
        archive = SHARED_ZIP
    if archive is not None:
        # Extracted and cleaned once; later calls return at once.
        root = prepare_cats_dogs(cache_dir / f"zip-{archive.stem}", archive=archive)
        return root, f"{archive} (extracted, unusable files removed)"
    if not synthetic and SHARED_FOLDER.is_dir():
        return SHARED_FOLDER, str(SHARED_FOLDER)
    per_class = max(2, -(-num_images // len(CLASSES)))
    root = generate_jpegs(cache_dir / f"stripes-{synthetic_size}px", per_class, synthetic_size)
    return root, f"generated stripes, {synthetic_size} px JPEGs ({root})"


def usable_samples(
    root: Path, num_images: int, seed: int, cache_dir: Path
) -> tuple[list[str], list[Sample]]:
    """Up to `num_images` decodable images, the same number from each class (seeded draw)."""
    classes = find_classes(root)
    candidates, _ = collect_samples(root, classes)
    unusable = find_unusable([s.path for s in candidates], root, DEFAULT_MAX_PIXELS, cache_dir)
    rng = random.Random(seed)
    per_class = max(1, num_images // len(classes))
    chosen: list[Sample] = []
    for label in range(len(classes)):
        members = [s for s in candidates if s.label == label and s.path not in unusable]
        rng.shuffle(members)
        chosen.extend(sorted(members[:per_class], key=lambda s: str(s.path)))
    return classes, chosen


def link_folder(dest: Path, samples: list[Sample], classes: list[str], source_root: Path) -> None:
    """`dest/<class>/<flattened relative path>` symlinks to the samples' files."""
    for name in classes:
        (dest / name).mkdir(parents=True, exist_ok=True)
    for sample in samples:
        relative = sample.path.relative_to(source_root / classes[sample.label])
        link = dest / classes[sample.label] / "__".join(relative.parts)
        os.symlink(sample.path.resolve(), link)


def make_split(
    source_root: Path,
    source: str,
    work_dir: Path,
    num_images: int,
    seed: int,
    cache_dir: Path,
    val_fraction: float = 0.2,
    same_files: bool = False,
) -> Split:
    """A stratified `val_fraction` split (`same_files`: every image in both, for decode timing)."""
    classes, samples = usable_samples(source_root, num_images, seed, cache_dir)
    if same_files:
        train, val = samples, samples
    else:
        train, val = stratified_split(samples, val_fraction, seed)
    root = work_dir / "split"
    link_folder(root / "train", train, classes, source_root)
    link_folder(root / "val", val, classes, source_root)
    # Read every file once, so that no pipeline pays for the first read from disk.
    for sample in samples:
        sample.path.read_bytes()
    return Split(root, classes, train, val, source)
