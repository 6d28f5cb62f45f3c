"""The uint8 tensor transforms: shapes, dtypes, and the PIL round trip behind the rotation."""

from __future__ import annotations

import re

import pytest
import torch
from PIL import Image
from torchvision.transforms import v2

from src.data.transforms import (
    Augmentation,
    OnPILImage,
    RandomRotationAndFlip,
    eval_transform,
    rotate_batch,
)
from src.utils.errors import UserError


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
        Augmentation().worker_transform(32),
        Augmentation(rotation_degrees=0).worker_transform(32),
        eval_transform(32),
    ]
    for transform in transforms:
        out = transform(image)
        assert out.dtype == torch.uint8 and out.shape == (3, 32, 32)
    torch.manual_seed(0)
    augmented = torch.stack([Augmentation().worker_transform(32)(image) for _ in range(4)])
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


@pytest.mark.parametrize("policy", ["trivial", "randaugment"])
def test_augmentation_policies_give_uint8_squares_that_vary(policy: str) -> None:
    image = _image(90, 120, False)
    transform = Augmentation(policy=policy, random_erasing=0.5).worker_transform(32)
    torch.manual_seed(0)
    views = torch.stack([transform(image) for _ in range(6)])
    assert views.dtype == torch.uint8 and views.shape == (6, 3, 32, 32)
    assert len({view.numpy().tobytes() for view in views}) == 6


def test_random_erasing_blacks_out_a_rectangle() -> None:
    image = torch.full((3, 40, 40), 200, dtype=torch.uint8)
    settings = Augmentation(crop_scale=(1.0, 1.0), rotation_degrees=0, random_erasing=1.0)
    erased = settings.worker_transform(32)
    assert (erased(image) == 0).any() and (erased(image) == 200).any()


def test_mixup_mixes_images_and_labels() -> None:
    images = torch.stack([torch.zeros(3, 8, 8), torch.full((3, 8, 8), 200.0)]).to(torch.uint8)
    torch.manual_seed(0)
    mixed_images, probabilities = Augmentation(mixup=1.0).batch_mixing(2)(
        images, torch.tensor([0, 1])
    )
    assert mixed_images.dtype == torch.uint8
    assert torch.allclose(probabilities.sum(dim=1), torch.ones(2))
    share = probabilities[0, 0].item()  # of the first image, from class 0
    assert 0 < share < 1 and abs(mixed_images[0].float().mean().item() - 200 * (1 - share)) < 1
    assert Augmentation().batch_mixing(2) is None


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"policy": "autoaugment"}, "data.augment.policy='autoaugment' is not an option"),
        ({"random_erasing": 1.5}, "data.augment.random_erasing"),
    ],
)
def test_wrong_augmentation_settings_are_refused(setting: dict, message: str) -> None:
    with pytest.raises(UserError, match=re.escape(message)):
        Augmentation(**setting)
