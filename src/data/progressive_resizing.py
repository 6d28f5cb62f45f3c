"""Progressive resizing (FFCV's and fastai's recipes): smaller training images in early epochs,
full size by the end, so early epochs cost less where the network's work dominates.

Training batches are resized on the training device after they arrive, by a pure function of
the epoch: every process of a DDP run, and a run resumed mid-epoch, train at the same size
without any state to keep. Validation is always at full size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torchvision.transforms.v2 import functional as F

from src.utils.errors import require_int, require_number


@dataclass(frozen=True)
class ProgressiveResizing:
    """`data.progressive_resizing`: training images start at `start_scale` x `data.image_size`
    and grow linearly, in multiples of `step` px, to full size for the last `final_epochs`."""

    enabled: bool = False
    start_scale: float = 0.5
    final_epochs: int = 1
    step: int = 8

    def __post_init__(self) -> None:
        require_number(self.start_scale, "data.progressive_resizing.start_scale", 0.0, 1.0)
        require_int(self.final_epochs, "data.progressive_resizing.final_epochs", 0)
        require_int(self.step, "data.progressive_resizing.step", 1)

    def size_at(self, epoch: int, max_epochs: int, full_size: int) -> int:
        """The side of the training images in `epoch` (0-based) of `max_epochs`."""
        ramp_epochs = max_epochs - self.final_epochs
        if not self.enabled or epoch >= ramp_epochs:
            return full_size
        scale = self.start_scale + (1.0 - self.start_scale) * epoch / ramp_epochs
        size = math.floor(full_size * scale / self.step + 0.5) * self.step  # half up
        return min(max(size, self.step), full_size)

    def sizes(self, max_epochs: int, full_size: int) -> list[int]:
        """The training size of every epoch, for the run's log."""
        return [self.size_at(epoch, max_epochs, full_size) for epoch in range(max_epochs)]


def resize_batch(images: torch.Tensor, size: int) -> torch.Tensor:
    """A batch [B, C, H, W] of square images resized to `size` (antialiased, dtype kept)."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    return F.resize(images, [size, size], antialias=True)
