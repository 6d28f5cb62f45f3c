"""Samples (an image file and its labels), the file lists a run writes, and finding image files
to predict on."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from src.data.images import IMAGE_EXTENSIONS
from src.utils.errors import UserError


@dataclass(frozen=True)
class Sample:
    """One image file and its labels: class indices, one for a single-label task (`Sample(path,
    3)` is `Sample(path, (3,))`)."""

    path: Path
    labels: tuple[int, ...]

    def __post_init__(self) -> None:
        if isinstance(self.labels, int):
            object.__setattr__(self, "labels", (self.labels,))

    @property
    def label(self) -> int:
        """The class of a single-label sample."""
        return self.labels[0]


def has_image_suffix(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def relative_name(path: Path, root: Path) -> str:
    """`path` as written in file lists and cache keys: relative to `root` when under it."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def write_file_list(
    path: Path, samples: Sequence[Sample], root: Path, classes: Sequence[str]
) -> None:
    """One `relative/path<TAB>class` line per sample (several classes joined by `;`), so a run's
    split can be checked or reused."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        f"{relative_name(sample.path, root)}\t{';'.join(classes[i] for i in sample.labels)}"
        for sample in samples
    ]
    path.write_text("\n".join(lines) + ("\n" if lines else ""), encoding="utf-8")


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
