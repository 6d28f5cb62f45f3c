"""JPEG decoding and transforms on the training device (`data.decode_on_device=true`).

On a fast GPU the loader workers' CPU decoding, not the model, limits training; TorchCodec
decodes a batch of JPEGs with nvJPEG there. The workers then only read files: plain, upright
JPEGs travel as their bytes, any other image decoded as usual. On a CPU this moves the same
work into the training process, which only suits checking the path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torchcodec.decoders import decode_jpeg

from src.data.dataset import TooManyUnreadableFiles, record_read_failure

Transform = Callable[[torch.Tensor], torch.Tensor]


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


def collate_undecoded(batch: Sequence[tuple[torch.Tensor, int, str]]) -> UndecodedBatch:
    images, labels, paths = zip(*batch, strict=True)
    return UndecodedBatch(
        torch.cat([image.reshape(-1) for image in images]),
        [tuple(image.shape) for image in images],
        torch.tensor(labels),
        list(paths),
    )


def decode_batch(
    batch: UndecodedBatch,
    device: torch.device,
    transform: Transform,
    read_failures: dict[Path, str],
    max_read_failures: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(images [B, 3, S, S] on `device`, labels): encoded images decoded there, then every image
    transformed there.

    A JPEG that no longer decodes (changed on disk since the scan) is replaced by another image
    of the batch, as the workers' path serves the next file, and counts towards
    `data.max_read_failures`.
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
            record_read_failure(
                read_failures, Path(batch.paths[index]), "no longer decodes", max_read_failures
            )
            index = next(i for i in good if i > index) if index < good[-1] else good[0]
        chosen.append(index)
    pixels = torch.stack([transform(pictures[index]) for index in chosen])  # type: ignore[arg-type]
    return pixels, batch.labels[chosen]


def _decode_all(encoded: list[torch.Tensor], device: torch.device) -> list[torch.Tensor | None]:
    """One batched call; if that fails, one call per image, None for those that fail."""
    if not encoded:
        return []
    try:
        return list(decode_jpeg(encoded, mode="RGB", device=device))
    except Exception:  # a broken file among them: find it
        results: list[torch.Tensor | None] = []
        for data in encoded:
            try:
                results.append(decode_jpeg(data, mode="RGB", device=device))
            except Exception:
                results.append(None)
        return results
