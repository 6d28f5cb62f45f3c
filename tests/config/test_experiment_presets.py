"""The experiment presets: the PyTorch tutorial's two recipes and the modern one, as configured.
What each trains (model, optimizer, schedule, batches, which parameters move) is checked on a
short run by tests/config/test_group_options.py."""

from __future__ import annotations

import pytest
from omegaconf import DictConfig

from src.config.model_input import resolve_model_input


def assert_resnet34_on_cats_and_dogs(cfg: DictConfig) -> None:
    """What every preset shares: an ImageNet ResNet34 fine-tuned on Cats vs Dogs at 224 px (the
    model's own size, filled in as train does)."""
    resolve_model_input(cfg)
    assert (cfg.model.source, cfg.model.name, cfg.model.pretrained) == (
        "torchvision",
        "resnet34",
        True,
    )
    assert cfg.data.image_size == 224 and cfg.data._target_.endswith("CatsDogsDataModule")
    assert cfg.data.crop_pct == 0.875


@pytest.mark.parametrize(
    ("preset", "trainable"),
    [
        pytest.param("tutorial_finetune", None, id="tutorial_finetune"),  # everything trains
        pytest.param("tutorial_feature_extractor", [], id="tutorial_feature_extractor"),  # the head
    ],
)
def test_tutorial_presets_are_the_tutorial_recipe(preset, trainable, make_config) -> None:
    cfg = make_config([f"experiment={preset}"])
    assert_resnet34_on_cats_and_dogs(cfg)
    assert cfg.freeze.trainable == trainable
    assert not cfg.freeze.unfreeze_at
    optimizer = {k: cfg.optimizer[k] for k in ("_target_", "lr", "momentum", "backbone_lr_mult")}
    assert optimizer == {
        "_target_": "torch.optim.SGD",
        "lr": 0.001,
        "momentum": 0.9,
        "backbone_lr_mult": 1.0,
    }
    assert cfg.scheduler.scheduler._target_ == "torch.optim.lr_scheduler.StepLR"
    assert (cfg.scheduler.scheduler.step_size, cfg.scheduler.scheduler.gamma) == (7, 0.1)
    assert (cfg.trainer.max_epochs, cfg.data.batch_size) == (25, 4)
    augment = cfg.data.augment
    assert (augment.enabled, augment.rotation_degrees, augment.horizontal_flip) == (True, 15, True)


def test_modern_preset_unfreezes_gradually_with_adamw(make_config) -> None:
    cfg = make_config(["experiment=modern"])
    assert_resnet34_on_cats_and_dogs(cfg)
    assert cfg.freeze.trainable == [] and dict(cfg.freeze.unfreeze_at) == {"rest": 1}
    assert cfg.optimizer._target_ == "torch.optim.AdamW"
    assert cfg.optimizer.backbone_lr_mult == 0.1
    assert cfg.scheduler.scheduler.T_max == cfg.trainer.max_epochs
