"""The uint8 tensor transforms: shapes, dtypes, and the PIL round trip behind the rotation."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from torchvision.transforms import v2

from src.data.transforms import (
    OnPILImage,
    RandomRotationAndFlip,
    eval_transform,
    rotate_batch,
    train_transform,
)


def _image(height: int, width: int, pixel_major: bool) -> torch.Tensor:
    """A random uint8 [3, H, W] image laid out plane by plane, or pixel by pixel as decoded."""
    generator = torch.Generator().manual_seed(0)
    image = torch.randint(0, 256, (3, height, width), dtype=torch.uint8, generator=generator)
    return image.permute(1, 2, 0).contiguous().permute(2, 0, 1) if pixel_major else image


@pytest.mark.parametrize("pixel_major", [False, True])
def test_pil_round_trip_keeps_every_pixel(pixel_major: bool) -> None:
    image = _image(20, 30, pixel_major)
    assert torch.equal(OnPILImage(lambda pil: pil)(image), image)
    quarter_turn = OnPILImage(lambda pil: pil.transpose(Image.Transpose.ROTATE_90))(image)
    assert torch.equal(quarter_turn, torch.rot90(image, 1, dims=(1, 2)))


@pytest.mark.parametrize("pixel_major", [False, True])
def test_rotation_on_pil_matches_the_tensor_rotation_of_a_square(pixel_major: bool) -> None:
    """A 90 degree RandomRotation gives the same pixels through PIL as torchvision's own."""
    image = _image(16, 16, pixel_major)
    torch.manual_seed(1)
    through_pil = OnPILImage(v2.RandomRotation((90, 90)))(image)
    torch.manual_seed(1)
    assert torch.equal(through_pil, v2.RandomRotation((90, 90))(image))


@pytest.mark.parametrize("pixel_major", [False, True])
def test_transforms_give_uint8_squares(pixel_major: bool) -> None:
    image = _image(90, 120, pixel_major)
    transforms = [
        train_transform(32),
        train_transform(32, rotation_degrees=0),
        eval_transform(32),
    ]
    for transform in transforms:
        out = transform(image)
        assert out.dtype == torch.uint8 and out.shape == (3, 32, 32)
    torch.manual_seed(0)
    augmented = torch.stack([train_transform(32)(image) for _ in range(4)])
    assert not all(torch.equal(augmented[0], other) for other in augmented[1:])
    assert torch.equal(eval_transform(32)(image), eval_transform(32)(image))


@pytest.mark.parametrize("degrees", [90.0, 15.0, -10.0, 7.5])
def test_batch_rotation_gives_torchvisions_pixels(degrees: float) -> None:
    images = torch.randint(0, 256, (3, 3, 17, 17), dtype=torch.uint8)
    expected = torch.stack([v2.functional.rotate(image, degrees) for image in images])
    assert torch.equal(rotate_batch(images, torch.full((3,), degrees)), expected)


def test_batch_rotation_and_flip_draw_per_image() -> None:
    images = torch.randint(0, 256, (1, 3, 16, 16), dtype=torch.uint8).expand(64, -1, -1, -1)
    torch.manual_seed(0)
    flipped = RandomRotationAndFlip(degrees=0, horizontal_flip=True)(images)
    mirrored = (flipped == images.flip(-1)).flatten(1).all(dim=1)
    assert 16 < int(mirrored.sum()) < 48  # about half of them
    rotated = RandomRotationAndFlip(degrees=30, horizontal_flip=False)(images)
    assert len({image.numpy().tobytes() for image in rotated}) > 32  # an angle each (close ones
    # give the same nearest pixels at 16 px)
