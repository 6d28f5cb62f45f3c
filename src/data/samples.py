"""Find the classes and image files of a folder, and split them into train and validation sets."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from src.data.images import IMAGE_EXTENSIONS
from src.utils.errors import UserError


@dataclass(frozen=True)
class Sample:
    """One image file and its class index."""

    path: Path
    label: int


def find_classes(folder: Path) -> list[str]:
    """Sorted names of the class sub-folders of `folder` (hidden folders ignored)."""
    if not folder.is_dir():
        raise UserError(
            f"Data folder {folder} does not exist; set data.root to a folder of class "
            "sub-folders (or one holding train/ and val/)"
        )
    classes = sorted(
        entry.name
        for entry in folder.iterdir()
        if entry.is_dir() and not entry.name.startswith(".")
    )
    if not classes:
        raise UserError(
            f"Data folder {folder} has no class sub-folders; expected {folder}/<class>/<images>"
        )
    return classes


def _in_hidden(path: Path, folder: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(folder).parts)


def list_files(class_dir: Path) -> list[Path]:
    """Every file under a class folder, recursively and in a stable order (symlinks followed)."""
    return sorted(
        path for path in class_dir.rglob("*") if path.is_file() and not _in_hidden(path, class_dir)
    )


def has_image_suffix(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def scan_inputs(path: Path, setting: str) -> tuple[list[Path], dict[Path, str]]:
    """(image files, passed-over entries with the reason): the image file itself, or, in one walk
    of the folder, every file with an image suffix (sorted) and every entry that is not one:
    hidden and system files, broken links, anything but a regular file, other suffixes.
    `setting` names the option that gave `path`, for the error messages."""
    if path.is_file():
        return [path], {}
    if not path.is_dir():
        raise UserError(
            f"{setting}={path} does not exist; pass an image file or a folder of images"
        )
    files: list[Path] = []
    skipped: dict[Path, str] = {}
    for entry in sorted(path.rglob("*")):
        parts = entry.relative_to(path).parts
        if any(part.startswith(".") for part in parts[:-1]):
            continue  # inside a hidden folder: the folder itself is listed
        if parts[-1].startswith("."):
            skipped[entry] = "skipped: hidden"
        elif entry.is_symlink() and not entry.exists():
            skipped[entry] = "skipped: broken link"
        elif entry.is_dir():
            continue
        elif not entry.is_file():
            skipped[entry] = "skipped: not a regular file"
        elif not has_image_suffix(entry):
            skipped[entry] = "skipped: not an image file (suffix)"
        else:
            files.append(entry)
    if not files:
        raise UserError(f"{setting}={path} holds no image files")
    return files, skipped


def find_image_files(path: Path, setting: str) -> list[Path]:
    """The image files of `scan_inputs`."""
    return scan_inputs(path, setting)[0]


def collect_samples(folder: Path, classes: Sequence[str]) -> tuple[list[Sample], list[Path]]:
    """(candidate image samples, files skipped for their suffix) for the given classes."""
    samples: list[Sample] = []
    skipped: list[Path] = []
    for label, name in enumerate(classes):
        class_dir = folder / name
        if not class_dir.is_dir():
            raise UserError(
                f"Class folder {class_dir} is missing; "
                f"every split needs the classes {list(classes)}"
            )
        files = list_files(class_dir)
        images = [path for path in files if has_image_suffix(path)]
        skipped.extend(path for path in files if not has_image_suffix(path))
        if not images:
            raise UserError(
                f"Class folder {class_dir} holds no image files "
                f"({', '.join(sorted(IMAGE_EXTENSIONS))}); add images or remove the folder"
            )
        samples.extend(Sample(path, label) for path in images)
    return samples, skipped


def stratified_split(
    samples: Sequence[Sample], val_fraction: float, seed: int
) -> tuple[list[Sample], list[Sample]]:
    """Split each class by `val_fraction`, shuffled by `seed`: the same seed, the same split.

    Every class with at least two images gets at least one image on each side.
    """
    if not 0.0 < val_fraction < 1.0:
        raise UserError(f"data.val_fraction={val_fraction} must lie strictly between 0 and 1")
    rng = random.Random(seed)
    by_label: dict[int, list[Sample]] = {}
    for sample in sorted(samples, key=lambda s: (s.label, str(s.path))):
        by_label.setdefault(sample.label, []).append(sample)
    train: list[Sample] = []
    val: list[Sample] = []
    for label in sorted(by_label):
        members = by_label[label]
        rng.shuffle(members)
        n_val = round(len(members) * val_fraction)
        if len(members) >= 2:
            n_val = min(max(n_val, 1), len(members) - 1)
        val.extend(members[:n_val])
        train.extend(members[n_val:])
    return train, val


def write_file_list(
    path: Path, samples: Sequence[Sample], root: Path, classes: Sequence[str]
) -> None:
    """One `relative/path<TAB>class` line per sample, so a run's split can be checked or reused."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        f"{sample.path.relative_to(root).as_posix()}\t{classes[sample.label]}" for sample in samples
    ]
    path.write_text("\n".join(lines) + ("\n" if lines else ""), encoding="utf-8")
