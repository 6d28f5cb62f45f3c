"""Where samples come from: a `SampleSource` yields image files with their labels and the class
names, and nothing else; the data module checks, splits, loads and batches them."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

from src.data.samples import Sample


@dataclass
class SourceSamples:
    """What a source read: the class names, every candidate image with its labels (class
    indices), what it left out and why (by name: a file, or a row of a label file), and what it
    says of the split, if anything: each sample's side (`sides`: path -> `train` or `val`), fold
    (`folds`: path -> fold number) or group (`groups`: path -> group; a group stays in one
    fold)."""

    class_names: list[str]
    samples: list[Sample]
    excluded: dict[str, str] = field(default_factory=dict)
    sides: dict[Path, str] | None = None
    folds: dict[Path, int] | None = None
    groups: dict[Path, str] | None = None


class SampleSource(ABC):
    """A source of labelled images under `root` (file lists are written relative to it).

    `ensure` puts the images in place (download, generate; quick once done) and `ready` says
    whether it has completed, perhaps in another process; `read` lists the samples, with
    `whole` every image and no split of the source's own (a test set to evaluate).
    """

    root: Path

    def ensure(self) -> None:
        """Make the images available; idempotent. By default they are in place already."""
        return None

    def ready(self) -> bool:
        """Whether `ensure` has completed (processes started together wait for it)."""
        return True

    @abstractmethod
    def read(self, whole: bool = False) -> SourceSamples:
        """The classes and samples, without reading any image."""
