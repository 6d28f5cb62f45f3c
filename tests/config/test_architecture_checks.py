"""Mistakes that only the architecture reveals, refused before any data is read."""

from __future__ import annotations

import pytest

from src.train import train
from src.utils.errors import UserError
from tests.helpers import NO_DATA


def test_a_fixed_input_size_model_names_the_size_it_needs(make_config) -> None:
    cfg = make_config([*NO_DATA, "model.name=vit_b_16", "data.image_size=64"])
    with pytest.raises(UserError, match=r"vit_b_16 cannot take data.image_size=64.*=224"):
        train(cfg)
    with pytest.raises(UserError, match="/nonexistent/images does not exist"):
        train(make_config([*NO_DATA, "model.name=vit_b_16", "data.image_size=224"]))


def test_models_that_cannot_be_built_without_memory_are_checked_too(make_config) -> None:
    """RegNets compute their widths from real tensors, so not on the meta device."""
    with pytest.raises(UserError, match="/nonexistent/images does not exist"):
        train(make_config([*NO_DATA, "model.name=regnet_y_400mf"]))


@pytest.mark.parametrize(("fraction", "left"), [(0, "for validation"), (1, "for training")])
def test_a_split_that_leaves_nothing_is_refused_before_the_scan(
    make_config, fraction: int, left: str
) -> None:
    with pytest.raises(UserError, match=f"data.val_fraction={fraction} leaves no image {left}"):
        train(make_config([*NO_DATA, f"data.val_fraction={fraction}"]))
