"""`data.progressive_resizing`: smaller training images in early epochs, full size at the end;
validation always at full size; the same sizes after a resume."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import ClassVar

import pytest
import torch
from lightning.pytorch import Callback

from src.data.progressive_resizing import ProgressiveResizing, resize_batch
from src.evaluate import evaluate
from src.train import train
from src.utils.errors import UserError
from tests.helpers import NO_DATA

ON = "data.progressive_resizing.enabled=true"
PROGRESSIVE = [ON, "trainer.max_epochs=3"]


class RecordImageSizes(Callback):
    """The side of the images the model gets, per epoch, in training and in validation; stops
    the run after `stop_after_epoch` when given (an interrupted run to resume)."""

    training: ClassVar[dict[int, set[int]]] = {}
    validation: ClassVar[dict[int, set[int]]] = {}

    def __init__(self, stop_after_epoch: int | None = None) -> None:
        self.stop_after_epoch = stop_after_epoch

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        self.training.setdefault(trainer.current_epoch, set()).add(batch[0].shape[-1])

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        if not trainer.sanity_checking:
            self.validation.setdefault(trainer.current_epoch, set()).add(batch[0].shape[-1])

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if trainer.current_epoch == self.stop_after_epoch:
            trainer.should_stop = True


@pytest.fixture
def recorded() -> type[RecordImageSizes]:
    RecordImageSizes.training.clear()
    RecordImageSizes.validation.clear()
    return RecordImageSizes


def record(stop_after_epoch: int | None = None) -> list[str]:
    target = f"{__name__}.{RecordImageSizes.__name__}"
    return [
        f"+callbacks.record_sizes._target_={target}",
        f"+callbacks.record_sizes.stop_after_epoch={stop_after_epoch or 'null'}",
    ]


def test_sizes_grow_linearly_in_steps_to_full_size_for_the_final_epochs() -> None:
    assert ProgressiveResizing(enabled=True).sizes(5, 64) == [32, 40, 48, 56, 64]
    two_final = ProgressiveResizing(enabled=True, final_epochs=2, step=16).sizes(6, 224)
    assert two_final == [112, 144, 176, 192, 224, 224]
    assert ProgressiveResizing(enabled=True, start_scale=0.75, step=32).sizes(3, 224) == [
        160,
        192,
        224,
    ]
    # off, or nothing to ramp over: every epoch at full size
    assert ProgressiveResizing().sizes(4, 64) == [64] * 4
    assert ProgressiveResizing(enabled=True, final_epochs=3).sizes(3, 64) == [64] * 3
    assert ProgressiveResizing(enabled=True, start_scale=0.0).sizes(3, 32)[0] == 8


def test_a_batch_is_resized_keeping_its_type_and_content() -> None:
    images = torch.full((2, 3, 64, 64), 200, dtype=torch.uint8)
    images[1, :, :, 32:] = 0  # right half black
    small = resize_batch(images, 32)
    assert small.shape == (2, 3, 32, 32) and small.dtype == torch.uint8
    assert (small[0] == 200).all()
    assert (small[1, :, :, :15] == 200).all() and (small[1, :, :, 17:] == 0).all()
    assert resize_batch(images, 64) is images


@pytest.mark.slow
def test_training_grows_the_images_and_validates_at_full_size_also_after_a_resume(
    make_config, folder_overrides, tmp_path: Path, recorded, caplog
) -> None:
    caplog.set_level(logging.INFO)
    first = tmp_path / "first"
    train(make_config([*folder_overrides, *PROGRESSIVE, *record(1), f"paths.output_dir={first}"]))
    assert "epochs 0-2 train at 16, 24, 32 px; validation at 32 px" in caplog.text
    assert recorded.training == {0: {16}, 1: {24}}
    assert recorded.validation == {0: {32}, 1: {32}}

    resumed = [f"ckpt_path={first / 'checkpoints' / 'last.ckpt'}", f"paths.output_dir={tmp_path}/r"]
    train(make_config([*folder_overrides, *PROGRESSIVE, *record(), *resumed]))
    assert recorded.training == {0: {16}, 1: {24}, 2: {32}}
    assert recorded.validation == {0: {32}, 1: {32}, 2: {32}}

    # evaluate scores best.ckpt at the size validation scored it
    best = tmp_path / "r" / "checkpoints" / "best.ckpt"
    callbacks = torch.load(best, weights_only=True)["callbacks"]
    score = next(v["best_model_score"] for k, v in callbacks.items() if "Checkpoint" in k)
    caplog.clear()
    metrics = evaluate(make_config([f"ckpt_path={best}"], config_name="evaluate"))
    assert metrics["accuracy"] == pytest.approx(float(score))
    assert "Progressive resizing" not in caplog.text  # no training schedule in an evaluation


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            [ON, "freeze=all"],
            "data.progressive_resizing changes .* set freeze.cache_features=false",
        ),
        (
            ["freeze=all", "data.augment.mixup=0.2", "data.augment.cutmix=1.0"],
            "data.augment.mixup and data.augment.cutmix change .* or turn them off",
        ),
        ([ON, "trainer.max_epochs=-1"], "over trainer.max_epochs=-1: give a number of epochs"),
        (
            [ON, "model.name=vit_b_16", "data.image_size=224"],
            "vit_b_16 cannot take 112 px, the first size of data.progressive_resizing",
        ),
        (
            [ON, "data.progressive_resizing.start_scale=2"],
            "start_scale=2 must be a number between 0.0 and 1.0",
        ),
    ],
)
def test_settings_that_cannot_work_are_refused_before_the_data(
    make_config, overrides: list[str], message: str
) -> None:
    with pytest.raises(UserError, match=message):
        train(make_config([*NO_DATA, *overrides]))
