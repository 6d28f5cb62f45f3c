"""PIL image -> uint8 tensor transforms: the tutorial's augmentation, and resize + center crop.

Each ends in a uint8 [3, H, W] tensor; normalisation happens later, on the device. Where each
step runs was measured (`python -m benchmarks.decode`): the augmentation is cheaper on the PIL
image (rotating a PIL image costs a fraction of rotating a tensor), the resize for evaluation
cheaper on the tensor.
"""

from __future__ import annotations

from collections.abc import Sequence

from torchvision.transforms import v2


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
    """RandomResizedCrop, RandomRotation and RandomHorizontalFlip, as in the tutorial."""
    if not enabled:
        return eval_transform(image_size)
    steps: list[v2.Transform] = [
        v2.RandomResizedCrop(image_size, scale=tuple(crop_scale), antialias=True)
    ]
    if rotation_degrees:
        steps.append(v2.RandomRotation(rotation_degrees))
    if horizontal_flip:
        steps.append(v2.RandomHorizontalFlip())
    return v2.Compose([*steps, v2.PILToTensor()])


def eval_transform(image_size: int) -> v2.Transform:
    """Deterministic: resize the shorter side, then crop the center square."""
    return v2.Compose(
        [
            v2.PILToTensor(),
            v2.Resize(resize_size_for(image_size), antialias=True),
            v2.CenterCrop(image_size),
        ]
    )
