"""Test-time augmentation: the average of the class probabilities over a few views of each image."""

from __future__ import annotations

from collections.abc import Callable

import torch

from src.utils.errors import UserError

View = Callable[[torch.Tensor], torch.Tensor]

#: `tta=` options: the views of a batch [B, C, H, W] whose probabilities are averaged.
VIEWS: dict[str, tuple[View, ...]] = {
    "none": (lambda images: images,),
    "flip": (lambda images: images, lambda images: images.flip(-1)),
}


def tta_views(name: str) -> tuple[View, ...]:
    if name not in VIEWS:
        raise UserError(f"tta={name!r} is not an option; choose one of: {', '.join(VIEWS)}")
    return VIEWS[name]


def averaged(probabilities: Callable[[torch.Tensor], torch.Tensor], views, images: torch.Tensor):
    """The mean of `probabilities` over the views of `images`."""
    return torch.stack([probabilities(view(images)) for view in views]).mean(dim=0)
