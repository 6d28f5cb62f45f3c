"""The training options work with a timm model as with a torchvision one: a short run with each
(weight averaging, MixUp / CutMix, progressive resizing, the learning-rate finder, gradual
unfreezing, cached features), and test-time augmentation in evaluate; a model built for one
input size is refused progressive resizing in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from src.train import train
from src.utils.errors import UserError
from tests.helpers import TINY

pytestmark = pytest.mark.slow

#: TINY with timm's smallest ConvNeXt in place of ResNet18.
TIMM_TINY = ["model=timm", "model.name=convnext_atto", *[o for o in TINY if "model.name" not in o]]


@pytest.mark.parametrize(
    "options",
    [
        ["weight_averaging=ema", "weight_averaging.decay=0.5"],
        ["data.augment.mixup=0.2", "data.augment.cutmix=1.0"],
        ["data.progressive_resizing.enabled=true", "data.image_size=64"],  # from 32 px
        ["tune=lr_find", "tune.num_training=4"],
        ["model.name=resnet18", "freeze=gradual"],  # timm's ResNet has layer3 and layer4
        ["freeze=all"],  # on cached features
    ],
    ids=["ema", "mixup_cutmix", "progressive", "lr_find", "gradual", "cached_features"],
)
def test_an_option_trains_a_timm_model(options: list[str], make_config, stripes_root) -> None:
    cfg = make_config(["data=folder", f"data.root={stripes_root}", *TIMM_TINY, *options])
    best = train(cfg)
    assert best is not None and 0.0 <= best <= 1.0
    assert (Path(cfg.paths.output_dir) / "checkpoints" / "best.ckpt").is_file()


def test_progressive_resizing_refuses_a_model_built_for_one_size(make_config, stripes_root) -> None:
    overrides = [
        "data=folder", f"data.root={stripes_root}", *TIMM_TINY,
        "model.name=vit_tiny_patch16_224", "data.progressive_resizing.enabled=true",
    ]  # fmt: skip
    with pytest.raises(UserError, match=r"vit_tiny_patch16_224 cannot take 16 px, the first size"):
        train(make_config(overrides))
