"""uint8 image tensor -> uint8 tensor transforms: the tutorial's augmentation, and resize + crop.

Each takes and returns a uint8 [3, H, W] tensor; normalisation happens later, on the device.
Each step runs where it is quickest (`python -m benchmarks.decode`): resizing on the tensor,
rotation on a PIL image made from it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import v2


class OnPILImage(torch.nn.Module):
    """Apply a PIL-image transform to a uint8 [3, H, W] tensor, copying as little as possible."""

    def __init__(self, transform: Callable[[Image.Image], Image.Image]) -> None:
        super().__init__()
        self.transform = transform

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(np.array(self.transform(_as_pil(image)))).permute(2, 0, 1)

    def extra_repr(self) -> str:
        return repr(self.transform)


def _as_pil(image: torch.Tensor) -> Image.Image:
    """A PIL image of a uint8 [3, H, W] tensor: one copy when the tensor is laid out pixel by
    pixel (as decoded), else PIL merges the three planes (much quicker than a transposing copy
    in torch)."""
    height, width = image.shape[1:]
    pixels = image.permute(1, 2, 0)
    if pixels.is_contiguous():
        return Image.frombuffer("RGB", (width, height), pixels.numpy(), "raw", "RGB", 0, 1)
    planes = image.contiguous().numpy()
    bands = [Image.frombuffer("L", (width, height), plane, "raw", "L", 0, 1) for plane in planes]
    return Image.merge("RGB", bands)


def resize_size_for(image_size: int) -> int:
    """Shorter side before the center crop, in the usual 224/256 proportion."""
    return round(image_size / 0.875)


def train_transform(
    image_size: int,
    enabled: bool = True,
    crop_scale: Sequence[float] = (0.08, 1.0),
    rotation_degrees: float = 15,
    horizontal_flip: bool = True,
    rotate_on_pil: bool = True,
) -> v2.Transform:
    """RandomResizedCrop, RandomRotation and RandomHorizontalFlip, as in the tutorial.

    `rotate_on_pil=False` keeps the rotation on the tensor, for images already on a GPU.
    """
    if not enabled:
        return eval_transform(image_size)
    steps: list[Callable[[torch.Tensor], torch.Tensor]] = [
        v2.RandomResizedCrop(image_size, scale=tuple(crop_scale), antialias=True)
    ]
    if rotation_degrees:
        rotation = v2.RandomRotation(rotation_degrees)
        steps.append(OnPILImage(rotation) if rotate_on_pil else rotation)
    if horizontal_flip:
        steps.append(v2.RandomHorizontalFlip())
    return v2.Compose(steps)


def eval_pipeline(image_size: int) -> tuple[v2.Transform, tuple[int, int]]:
    """The deterministic transform, and the size a JPEG may be draft-decoded to before it."""
    draft = resize_size_for(image_size)
    return eval_transform(image_size), (draft, draft)


def eval_transform(image_size: int) -> v2.Transform:
    """Deterministic: resize the shorter side, then crop the center square."""
    return v2.Compose(
        [v2.Resize(resize_size_for(image_size), antialias=True), v2.CenterCrop(image_size)]
    )
