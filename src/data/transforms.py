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
) -> v2.Transform:
    """RandomResizedCrop, RandomRotation and RandomHorizontalFlip, as in the tutorial, for one
    image in a loader worker."""
    if not enabled:
        return eval_transform(image_size)
    steps: list[Callable[[torch.Tensor], torch.Tensor]] = [
        v2.RandomResizedCrop(image_size, scale=tuple(crop_scale), antialias=True)
    ]
    if rotation_degrees:
        steps.append(OnPILImage(v2.RandomRotation(rotation_degrees)))
    if horizontal_flip:
        steps.append(v2.RandomHorizontalFlip())
    return v2.Compose(steps)


def device_train_transforms(
    image_size: int,
    enabled: bool = True,
    crop_scale: Sequence[float] = (0.08, 1.0),
    rotation_degrees: float = 15,
    horizontal_flip: bool = True,
) -> tuple[v2.Transform, torch.nn.Module | None]:
    """The same augmentation for images already on the training device: the crop per image
    (each has its own size), then rotation and flip over the stacked batch in one call each."""
    if not enabled:
        return eval_transform(image_size), None
    crop = v2.RandomResizedCrop(image_size, scale=tuple(crop_scale), antialias=True)
    return crop, RandomRotationAndFlip(rotation_degrees, horizontal_flip)


class RandomRotationAndFlip(torch.nn.Module):
    """RandomRotation (nearest pixel, black corners, about the center) and RandomHorizontalFlip
    of a uint8 batch [B, 3, S, S], each one call for the batch: torchvision's per-image rotation
    copies a matrix to the device for every image. Angles and coin flips are drawn on the CPU."""

    def __init__(self, degrees: float, horizontal_flip: bool) -> None:
        super().__init__()
        self.degrees = float(degrees)
        self.horizontal_flip = horizontal_flip

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        count = images.shape[0]
        if self.degrees:
            images = rotate_batch(images, torch.empty(count).uniform_(-self.degrees, self.degrees))
        if self.horizontal_flip:
            flip = (torch.rand(count) < 0.5).to(images.device, non_blocking=True)
            images = torch.where(flip.view(-1, 1, 1, 1), images.flip(-1), images)
        return images


def rotate_batch(images: torch.Tensor, degrees: torch.Tensor) -> torch.Tensor:
    """Each square image of [B, C, S, S] turned counter-clockwise by its angle, pixel for pixel
    as torchvision's `rotate` (nearest pixel, zeros outside, same size)."""
    if images.shape[-1] != images.shape[-2]:
        raise ValueError(f"rotate_batch takes square images, not {tuple(images.shape[-2:])}")
    radians = torch.deg2rad(degrees.float())
    cos, sin, zero = radians.cos(), radians.sin(), torch.zeros_like(radians)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    grid = torch.nn.functional.affine_grid(
        theta.to(images.device, non_blocking=True), list(images.shape), align_corners=False
    )
    rotated = torch.nn.functional.grid_sample(
        images.float(), grid, mode="nearest", padding_mode="zeros", align_corners=False
    )
    return rotated.to(images.dtype)


def eval_pipeline(image_size: int) -> tuple[v2.Transform, tuple[int, int]]:
    """The deterministic transform, and the size a JPEG may be draft-decoded to before it."""
    draft = resize_size_for(image_size)
    return eval_transform(image_size), (draft, draft)


def eval_transform(image_size: int) -> v2.Transform:
    """Deterministic: resize the shorter side, then crop the center square."""
    return v2.Compose(
        [v2.Resize(resize_size_for(image_size), antialias=True), v2.CenterCrop(image_size)]
    )
