"""A map-style dataset over checked image files, decoding safely into uint8 tensors."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch.utils.data import Dataset

from src.data.images import DEFAULT_MAX_PIXELS, open_rgb
from src.data.samples import Sample
from src.data.transforms import to_uint8_tensor


class ImageFileDataset(Dataset):
    """(uint8 image [3, H, W], label) pairs; images are decoded to RGB with EXIF orientation."""

    def __init__(
        self,
        samples: Sequence[Sample],
        transform: Callable[[torch.Tensor], torch.Tensor],
        max_pixels: int = DEFAULT_MAX_PIXELS,
        draft_size: tuple[int, int] | None = None,
    ) -> None:
        self.samples = list(samples)
        self.transform = transform
        self.max_pixels = max_pixels
        self.draft_size = draft_size

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        sample = self.samples[index]
        image = open_rgb(sample.path, self.max_pixels, self.draft_size)
        return self.transform(to_uint8_tensor(image)), sample.label
