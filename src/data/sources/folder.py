"""A folder of class folders (`data=folder`): `root/<class>/...`, split by the data module, or
`root/train/<class>/...` and `root/val/<class>/...`, split already."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from src.data.datamodule import ImageDataModule
from src.data.images import IMAGE_EXTENSIONS
from src.data.samples import Sample, has_image_suffix, relative_name
from src.data.source import SampleSource, SourceSamples
from src.data.split import TRAIN, VAL
from src.utils.errors import UserError


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


class FolderSource(SampleSource):
    """Class folders under `root`, or under `root/train` and `root/val` (the split given)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()

    @property
    def has_predefined_split(self) -> bool:
        return (self.root / "train").is_dir() and (self.root / "val").is_dir()

    def class_names(self) -> list[str]:
        return find_classes(self.root / TRAIN if self.has_predefined_split else self.root)

    def read(self, whole: bool = False) -> SourceSamples:
        classes = self.class_names()
        folders = [self.root / TRAIN, self.root / VAL] if self.has_predefined_split else [self.root]
        samples: list[Sample] = []
        sides: dict[Path, str] = {}
        excluded: dict[str, str] = {}
        for folder in folders:
            found, skipped = collect_samples(folder, classes)
            samples += found
            sides |= dict.fromkeys((sample.path for sample in found), folder.name)
            excluded |= {
                relative_name(path, self.root): "not an image file (suffix)" for path in skipped
            }
        split = self.has_predefined_split and not whole
        return SourceSamples(classes, samples, excluded, sides if split else None)


class ImageFolderDataModule(ImageDataModule):
    """`data=folder`: the images of a `FolderSource` at `root`."""

    def __init__(self, root: str, **settings: Any) -> None:
        super().__init__(**settings)

    def make_source(self) -> SampleSource:
        return FolderSource(self.hparams.root)
