"""A map-style dataset over checked image files, decoding safely into uint8 tensors."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset, get_worker_info

from src.data.images import (
    DEFAULT_MAX_PIXELS,
    UnusableImageError,
    read_jpeg_bytes_or_rgb,
    read_rgb_tensor,
)
from src.data.samples import Sample
from src.data.transforms import eval_pipeline
from src.utils.errors import UserError

log = logging.getLogger(__name__)


class TooManyUnreadableFiles(UserError):
    """More files than allowed became unreadable while the run was going."""


class ReadFailureTally:
    """How many files became unreadable, per loader process (slot 0: the training process, slot
    k: worker k-1), in memory those processes share with the training process.

    With a tally, passing `data.max_read_failures` does not raise where the failure happens (in a
    worker, that stops only its own process's loader, and under DDP the other processes wait in
    the next all-reduce until the process group times out): the training process reads the
    tally at points where every process is, and all stop together.
    """

    def __init__(self, workers: int) -> None:
        self.counts = torch.zeros(workers + 1, dtype=torch.long).share_memory_()

    def record(self, count: int) -> None:
        worker = get_worker_info()
        slot = 0 if worker is None else worker.id + 1
        self.counts[slot] = max(int(self.counts[slot]), count)

    def worst(self) -> int:
        return int(self.counts.max())


def class_index(sample: Sample) -> int:
    """A single-label sample's target: its class index."""
    return sample.label


class ImageFileDataset(Dataset):
    """(uint8 image [3, H, W], target) pairs: decoded to RGB (EXIF orientation applied), then
    `transform` (uint8 tensor in and out); the target is `target(sample)` (by default its class
    index). With `jpeg_bytes` (`data.decode_on_device`), items are (image, target, path), plain
    JPEGs come as their encoded bytes and nothing is transformed: decoding and transforms happen
    on the training device.

    A file that was fine at the start but cannot be read now (deleted, replaced by junk) is
    skipped with a warning and the next file is served instead, so the run goes on; more than
    `max_read_failures` such files (counted in each loader process) stop it: at once, or, with
    a `tally`, when the training process next reads it.
    """

    def __init__(
        self,
        samples: Sequence[Sample],
        transform: Callable[[torch.Tensor], torch.Tensor] | None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        draft_size: tuple[int, int] | None = None,
        max_read_failures: int = 20,
        jpeg_bytes: bool = False,
        tally: ReadFailureTally | None = None,
        target: Callable[[Sample], Any] | None = None,
    ) -> None:
        self.samples = list(samples)
        self.target = target or class_index
        self.transform = transform
        self.max_pixels = max_pixels
        self.draft_size = draft_size
        self.max_read_failures = max_read_failures
        self.jpeg_bytes = jpeg_bytes
        self.read_failures: dict[Path, str] = {}
        self.tally = tally

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, Any] | tuple[torch.Tensor, Any, str]:
        for offset in range(len(self.samples)):
            sample = self.samples[(index + offset) % len(self.samples)]
            try:
                image = self._read(sample.path)
            except UnusableImageError as error:
                self._record_failure(sample.path, str(error))
                continue
            if self.jpeg_bytes:
                return image, self.target(sample), str(sample.path)
            image = image if self.transform is None else self.transform(image)
            return image, self.target(sample)
        raise TooManyUnreadableFiles("No file of the data set can be read any more")

    def _read(self, path: Path) -> torch.Tensor:
        if self.jpeg_bytes:
            return read_jpeg_bytes_or_rgb(path, self.max_pixels, self.draft_size)
        return read_rgb_tensor(path, self.max_pixels, self.draft_size)

    def _record_failure(self, path: Path, reason: str) -> None:
        record_read_failure(self.read_failures, path, reason, self.max_read_failures, self.tally)


def record_read_failure(
    failures: dict[Path, str],
    path: Path,
    reason: str,
    max_read_failures: int,
    tally: ReadFailureTally | None = None,
) -> None:
    """Note a file that became unreadable during the run; past the limit, stop the run, or
    with a `tally`, count it there for the training process to stop it."""
    failures[path] = reason
    count = len(failures)
    if tally is not None:
        tally.record(count)
    elif count > max_read_failures:
        last = f"{path}: {reason}"
        raise TooManyUnreadableFiles(too_many_unreadable_files(count, max_read_failures, last))
    log.warning("Skipping %s, unreadable since the start of the run: %s", path, reason)


def too_many_unreadable_files(count: int, max_read_failures: int, last: str | None) -> str:
    """The message that stops the run; `last`: the latest file and why, when known."""
    where = f" (last: {last})" if last is not None else " (their names are in the warnings)"
    return (
        f"{count} files became unreadable during the run{where}, more than "
        f"data.max_read_failures={max_read_failures}; check the data folder"
    )


class UnlabelledImageFiles(Dataset):
    """(index, uint8 image through the deterministic eval pipeline, or None, and the reason the
    file is unusable): for predict and the export's check, where files have no labels."""

    def __init__(
        self, files: Sequence[Path], image_size: int, crop_pct: float, max_pixels: int
    ) -> None:
        self.files = list(files)
        self.transform, self.draft_size = eval_pipeline(image_size, crop_pct)
        self.max_pixels = max_pixels

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[int, torch.Tensor | None, str]:
        try:
            image = read_rgb_tensor(self.files[index], self.max_pixels, self.draft_size)
        except UnusableImageError as error:
            return index, None, str(error)
        return index, self.transform(image), ""
