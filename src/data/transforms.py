"""uint8 image tensor -> uint8 tensor transforms: the tutorial's augmentation, and resize + crop.

Each takes and returns a uint8 [3, H, W] tensor; normalisation happens later, on the device.
Each step runs where it is quickest (`python -m benchmarks.decode`): resizing on the tensor,
rotation on a PIL image made from it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import v2

from src.utils.errors import UserError, require_number


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


#: The center crop's share of the resized image in evaluation: 224 of 256, the usual proportion,
#: for data and checkpoints that name none (a model's own comes from its pretrained config).
DEFAULT_CROP_PCT = 0.875


def resize_size_for(image_size: int, crop_pct: float = DEFAULT_CROP_PCT) -> int:
    """Shorter side before the center crop of `image_size`, so that the crop keeps `crop_pct`."""
    return round(image_size / crop_pct)


#: `data.augment.policy`: an automatic augmentation policy after the crop (uint8 tensors).
POLICIES: dict[str, Callable[[], v2.Transform]] = {
    "trivial": v2.TrivialAugmentWide,
    "randaugment": v2.RandAugment,
}


def policy_transform(policy: str | None) -> v2.Transform | None:
    if policy in (None, "none"):
        return None
    return POLICIES[policy]()


@dataclass(frozen=True)
class Augmentation:
    """`data.augment`: the tutorial's RandomResizedCrop, RandomRotation and RandomHorizontalFlip;
    `policy` (TrivialAugment, RandAugment) after the crop, `random_erasing` last; MixUp / CutMix
    (`mixup`, `cutmix`: Beta alphas, 0 off) on training batches. A wrong value is refused when
    the settings are made, before any image is read."""

    enabled: bool = True
    crop_scale: Sequence[float] = (0.08, 1.0)
    rotation_degrees: float = 15
    horizontal_flip: bool = True
    policy: str | None = None
    random_erasing: float = 0.0
    mixup: float = 0.0
    cutmix: float = 0.0

    def __post_init__(self) -> None:
        if self.policy not in (None, "none", *POLICIES):
            raise UserError(
                f"data.augment.policy={self.policy!r} is not an option; choose none, "
                f"{', '.join(POLICIES)}"
            )
        require_number(self.random_erasing, "data.augment.random_erasing", 0.0, 1.0)
        require_number(self.mixup, "data.augment.mixup", 0.0)
        require_number(self.cutmix, "data.augment.cutmix", 0.0)

    def _crop(self, image_size: int) -> v2.Transform:
        return v2.RandomResizedCrop(image_size, scale=tuple(self.crop_scale), antialias=True)

    def _erasing(self) -> v2.Transform | None:
        """Black rectangles, as timm's recipes erase."""
        return v2.RandomErasing(p=self.random_erasing, value=0) if self.random_erasing else None

    def worker_transform(self, image_size: int, crop_pct: float = DEFAULT_CROP_PCT) -> v2.Transform:
        """For one image in a loader worker (without augmentation: the evaluation crop)."""
        if not self.enabled:
            return eval_transform(image_size, crop_pct)
        steps: list[Callable[[torch.Tensor], torch.Tensor] | None] = [
            self._crop(image_size),
            policy_transform(self.policy),
            OnPILImage(v2.RandomRotation(self.rotation_degrees)) if self.rotation_degrees else None,
            v2.RandomHorizontalFlip() if self.horizontal_flip else None,
            self._erasing(),
        ]
        return v2.Compose([step for step in steps if step is not None])

    def device_transforms(
        self, image_size: int, crop_pct: float = DEFAULT_CROP_PCT
    ) -> tuple[v2.Transform, torch.nn.Module | None]:
        """For images already on the training device: the crop (and policy) per image, each has
        its own size; then rotation and flip over the stacked batch in one call each, and
        erasing per image."""
        if not self.enabled:
            return eval_transform(image_size, crop_pct), None
        steps = (self._crop(image_size), policy_transform(self.policy))
        per_image = v2.Compose([step for step in steps if step is not None])
        batch = RandomRotationAndFlip(self.rotation_degrees, self.horizontal_flip, self._erasing())
        return per_image, batch

    def batch_mixing(
        self, num_classes: int, multi_label: bool = False
    ) -> Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None:
        """MixUp and/or CutMix of a training batch (either one per batch when both are on), or
        None when both alphas are 0. uint8 images in and out; labels become class probabilities
        [B, C] (torchvision's), or with `multi_label` multi-hot targets mixed alike."""
        if not (self.mixup or self.cutmix):
            return None
        if multi_label:
            return functools.partial(mix_multi_hot, mixup=self.mixup, cutmix=self.cutmix)
        choices = [v2.MixUp(alpha=self.mixup, num_classes=num_classes)] if self.mixup else []
        choices += [v2.CutMix(alpha=self.cutmix, num_classes=num_classes)] if self.cutmix else []
        mix = choices[0] if len(choices) == 1 else v2.RandomChoice(choices)

        def mixed(images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            pixels, probabilities = mix(images.float(), labels)
            return pixels.round_().clamp_(0, 255).to(torch.uint8), probabilities

        return mixed


def mix_multi_hot(
    images: torch.Tensor, targets: torch.Tensor, mixup: float, cutmix: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """MixUp or CutMix (one, drawn, when both alphas are on) of uint8 images with the next image
    of the batch, as torchvision's do, and of their multi-hot targets in the same proportion:
    torchvision's take class indices only."""
    use_cutmix = bool(cutmix) and (not mixup or bool(torch.rand(()) < 0.5))
    alpha = cutmix if use_cutmix else mixup
    share = float(torch.distributions.Beta(alpha, alpha).sample())
    other_images, other_targets = images.roll(1, 0), targets.roll(1, 0)
    if use_cutmix:
        height, width = images.shape[-2:]
        box_h, box_w = round(height * (1 - share) ** 0.5), round(width * (1 - share) ** 0.5)
        top = int(torch.randint(0, height - box_h + 1, ()))
        left = int(torch.randint(0, width - box_w + 1, ()))
        mixed = images.clone()
        mixed[..., top : top + box_h, left : left + box_w] = other_images[
            ..., top : top + box_h, left : left + box_w
        ]
        share = 1 - box_h * box_w / (height * width)
    else:
        blend = share * images.float() + (1 - share) * other_images.float()
        mixed = blend.round_().clamp_(0, 255).to(torch.uint8)
    return mixed, share * targets.float() + (1 - share) * other_targets.float()


class RandomRotationAndFlip(torch.nn.Module):
    """RandomRotation (nearest pixel, black corners, about the center) and RandomHorizontalFlip
    of a uint8 batch [B, 3, S, S], each one call for the batch: torchvision's per-image rotation
    copies a matrix to the device for every image. Angles and coin flips are drawn on the CPU."""

    def __init__(
        self, degrees: float, horizontal_flip: bool, erasing: v2.Transform | None = None
    ) -> None:
        super().__init__()
        self.degrees = float(degrees)
        self.horizontal_flip = horizontal_flip
        self.erasing = erasing

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        count = images.shape[0]
        if self.degrees:
            images = rotate_batch(images, torch.empty(count).uniform_(-self.degrees, self.degrees))
        if self.horizontal_flip:
            flip = (torch.rand(count) < 0.5).to(images.device, non_blocking=True)
            images = torch.where(flip.view(-1, 1, 1, 1), images.flip(-1), images)
        if self.erasing is not None:  # a rectangle of its own for each image
            images = torch.stack([self.erasing(image) for image in images])
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


def eval_pipeline(
    image_size: int, crop_pct: float = DEFAULT_CROP_PCT
) -> tuple[v2.Transform, tuple[int, int]]:
    """The deterministic transform, and the size a JPEG may be draft-decoded to before it."""
    draft = resize_size_for(image_size, crop_pct)
    return eval_transform(image_size, crop_pct), (draft, draft)


def eval_transform(image_size: int, crop_pct: float = DEFAULT_CROP_PCT) -> v2.Transform:
    """Deterministic: resize the shorter side, then crop the center square."""
    resize = resize_size_for(image_size, crop_pct)
    return v2.Compose([v2.Resize(resize, antialias=True), v2.CenterCrop(image_size)])
