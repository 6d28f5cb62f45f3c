"""JPEG decoding and transforms on the training device (`data.decode_on_device=true`).

On a fast GPU the loader workers' CPU decoding, not the model, limits training; TorchCodec
decodes a batch of JPEGs with nvJPEG there. The workers then only read files: plain, upright
JPEGs travel as their bytes, any other image decoded as usual. On a CPU this moves the same
work into the training process, which only suits checking the path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import default_collate
from torchcodec.decoders import decode_jpeg

from src.data.dataset import ReadFailureTally, TooManyUnreadableFiles, record_read_failure
from src.utils.errors import UserError, one_line

Transform = Callable[[torch.Tensor], torch.Tensor]

#: Distance between the seeds of two processes' augmentation draws.
PROCESS_SEED_STRIDE = 1_000_003


@dataclass
class UndecodedBatch:
    """A batch as the workers send it: every image's bytes in one tensor (one shared-memory
    block per batch, not one per image), with each image's shape ([n] bytes still encoded,
    [3, H, W] already decoded)."""

    data: torch.Tensor
    shapes: list[tuple[int, ...]]
    labels: torch.Tensor
    paths: list[str]

    def images(self) -> list[torch.Tensor]:
        sizes = [torch.Size(shape).numel() for shape in self.shapes]
        parts = torch.split(self.data, sizes)
        return [part.view(shape) for part, shape in zip(parts, self.shapes, strict=True)]


def collate_undecoded(batch: Sequence[tuple[torch.Tensor, Any, str]]) -> UndecodedBatch:
    images, labels, paths = zip(*batch, strict=True)
    return UndecodedBatch(
        torch.cat([image.reshape(-1) for image in images]),
        [tuple(image.shape) for image in images],
        default_collate(list(labels)),
        list(paths),
    )


def decode_batch(
    batch: UndecodedBatch,
    device: torch.device,
    transform: Transform,
    read_failures: dict[Path, str],
    max_read_failures: int,
    tally: ReadFailureTally | None = None,
    batch_transform: Transform | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(images [B, 3, S, S] on `device`, labels): encoded images decoded there, then every image
    transformed there (`transform`), then the stacked batch (`batch_transform`).

    A JPEG that no longer decodes (changed on disk since the scan) is replaced by another image
    of the batch, as the workers' path serves the next file, and counts towards
    `data.max_read_failures` (in `tally`, when given: see `ReadFailureTally`).
    """
    images = batch.images()
    encoded = [index for index, image in enumerate(images) if image.dim() == 1]
    pictures: list[torch.Tensor | None] = [
        None if image.dim() == 1 else image.to(device) for image in images
    ]
    decoded = _decode_all([images[i] for i in encoded], device)
    for index, picture in zip(encoded, decoded, strict=True):
        pictures[index] = picture
    good = [index for index, picture in enumerate(pictures) if picture is not None]
    if not good:
        raise TooManyUnreadableFiles(
            f"No image of a batch decodes any more ({', '.join(batch.paths)}); "
            "check the data folder"
        )
    chosen = []
    for index, picture in enumerate(pictures):
        if picture is None:
            path = Path(batch.paths[index])
            record_read_failure(read_failures, path, "no longer decodes", max_read_failures, tally)
            index = next(i for i in good if i > index) if index < good[-1] else good[0]
        chosen.append(index)
    pixels = torch.stack([transform(pictures[index]) for index in chosen])  # type: ignore[arg-type]
    if batch_transform is not None:
        pixels = batch_transform(pixels)
    return pixels, batch.labels[chosen]


def _decode_all(encoded: list[torch.Tensor], device: torch.device) -> list[torch.Tensor | None]:
    """One batched call; if that fails, one call per image, None for those that fail."""
    if not encoded:
        return []
    try:
        return list(decode_jpeg(encoded, mode="RGB", device=device))
    except Exception as error:  # a broken file among them: find it
        raise_device_error(error)
        return [_decode_one(data, device) for data in encoded]


def _decode_one(data: torch.Tensor, device: torch.device) -> torch.Tensor | None:
    """The image on `device`, decoded there or, when the device's decoder refuses the file
    (nvJPEG does not take every JPEG the CPU decoder does), on the CPU; None if neither can."""
    try:
        return decode_jpeg(data, mode="RGB", device=device)
    except Exception as error:
        raise_device_error(error)
    if device.type == "cpu":
        return None
    try:
        return decode_jpeg(data, mode="RGB").to(device)
    except Exception:
        return None


def raise_device_error(error: Exception) -> None:
    """Re-raise what the device failed at (out of memory, a CUDA error): not the file's fault,
    so it must not be counted as an unreadable file nor hidden by a fallback."""
    if is_device_error(error):
        raise error


def is_device_error(error: BaseException) -> bool:
    """Whether `error` is the device's failure (out of memory, a CUDA error), not a file's."""
    device_failed = isinstance(error, (torch.cuda.OutOfMemoryError, torch.AcceleratorError))
    return device_failed or "CUDA error" in str(error)


class DeviceFailure(UserError):
    """The training device failed while decoding or transforming a batch."""


def device_failure_message(error: BaseException, device: torch.device, step: int) -> str:
    """One line: what the device failed at, where, and what to do."""
    return (
        f"{device} failed while decoding images on the device at step {step}: "
        f"{one_line(error)[:200]}; lower data.batch_size or set data.decode_on_device=false"
    )


class ProcessRandomness:
    """The random state that draws the augmentations made in the training process: seeded
    from the run's seed and the process's global rank, so that DDP processes draw different
    views (`seed_everything` gives every process the same state), and kept apart from the state
    the rest of training draws from."""

    def __init__(self) -> None:
        self._state: torch.Tensor | None = None

    @contextmanager
    def active(self, rank: int) -> Iterator[None]:
        if self._state is None:
            seed = torch.initial_seed() + PROCESS_SEED_STRIDE * rank
            self._state = torch.Generator().manual_seed(seed % 2**63).get_state()
        outside = torch.get_rng_state()
        torch.set_rng_state(self._state)
        try:
            yield
        finally:
            self._state = torch.get_rng_state()
            torch.set_rng_state(outside)
