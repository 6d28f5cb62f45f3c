"""JPEG decoding and transforms on the training device (`data.decode_on_device=true`).

On a fast GPU the loader workers' CPU decoding, not the model, limits training; TorchCodec
decodes a batch of JPEGs with nvJPEG there. The workers then only read files: plain, upright
JPEGs travel as their bytes, any other image decoded as usual. On a CPU this moves the same
work into the training process, which only suits checking the path.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import torch
from torchcodec.decoders import decode_jpeg

log = logging.getLogger(__name__)

Transform = Callable[[torch.Tensor], torch.Tensor]


def collate_undecoded(
    batch: Sequence[tuple[torch.Tensor, int]],
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """(images of any size or still encoded, labels): default_collate would stack them."""
    images, labels = zip(*batch, strict=True)
    return list(images), torch.tensor(labels)


def decode_batch(
    images: Sequence[torch.Tensor],
    labels: torch.Tensor,
    device: torch.device,
    transform: Transform,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode the encoded (1-D) images on `device`, transform every image there, stack.

    A JPEG that no longer decodes (changed on disk during the run) is left out with a warning.
    """
    encoded = [index for index, image in enumerate(images) if image.dim() == 1]
    decoded = dict(zip(encoded, _decode_all([images[i] for i in encoded], device), strict=True))
    pixels, kept = [], []
    for index, image in enumerate(images):
        picture = decoded[index] if index in decoded else image.to(device)
        if picture is not None:
            pixels.append(transform(picture))
            kept.append(index)
    if not pixels:
        raise RuntimeError("no image of the batch could be decoded")
    return torch.stack(pixels), labels[kept]


def _decode_all(encoded: list[torch.Tensor], device: torch.device) -> list[torch.Tensor | None]:
    """One batched call; if that fails, one call per image, None for those that fail."""
    if not encoded:
        return []
    try:
        return list(decode_jpeg(encoded, mode="RGB", device=device))
    except RuntimeError:
        results: list[torch.Tensor | None] = []
        for data in encoded:
            try:
                results.append(decode_jpeg(data, mode="RGB", device=device))
            except RuntimeError as error:
                log.warning("Skipping an image that no longer decodes: %s", error)
                results.append(None)
        return results
