"""What happens to batches on the training device: JPEGs decoded and augmented there
(`data.decode_on_device`), training images resized to the epoch's size
(`data.progressive_resizing`), then MixUp / CutMix (`data.augment.mixup`, `cutmix`)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torchvision.transforms import v2

from src.data.dataset import ReadFailureTally
from src.data.device_decoding import (
    DeviceFailure,
    ProcessRandomness,
    UndecodedBatch,
    decode_batch,
    device_failure_message,
    is_device_error,
)
from src.data.progressive_resizing import ProgressiveResizing, resize_batch
from src.data.transforms import Augmentation, eval_transform


class DeviceBatches:
    """The batch hooks of a data module, for images of `image_size` (evaluation crop
    `crop_pct`) in `num_classes` classes, several per image with `multi_label`."""

    def __init__(
        self,
        image_size: int | None,
        crop_pct: float,
        augmentation: Augmentation,
        progressive_resizing: ProgressiveResizing,
        max_read_failures: int,
        num_classes: Callable[[], int],
        multi_label: bool = False,
    ) -> None:
        self.image_size = image_size
        self.crop_pct = crop_pct
        self.augmentation = augmentation
        self.progressive_resizing = progressive_resizing
        self.max_read_failures = max_read_failures
        self.num_classes = num_classes
        self.multi_label = multi_label
        #: Per-process random draws of the augmentations made on the device.
        self.randomness = ProcessRandomness()
        #: Files that stopped decoding on the device during the run (`decode_on_device`).
        self.read_failures: dict[Path, str] = {}
        #: Where those failures are counted for the trainer (None: past the limit, stop here).
        self.tally: ReadFailureTally | None = None
        #: False: a device failure while decoding stops this process at once. True (several
        #: processes): it is recorded in `device_failure` for a callback that stops them all,
        #: and a blank batch stands in meanwhile, so that this process keeps in step.
        self.defer_device_failures = False
        self.device_failure: str | None = None

    def after_transfer(self, batch: Any, trainer: Any) -> Any:
        """Training batches resized to this epoch's size, then mixed."""
        if trainer is None or not trainer.training:
            return batch
        images, labels = batch
        size = self.progressive_resizing.size_at(
            trainer.current_epoch, trainer.max_epochs, self.image_size
        )
        images = resize_batch(images, size)
        if self.mixing is not None:
            images, labels = self.mixing(images, labels)
        return images, labels

    @functools.cached_property
    def mixing(self) -> Callable | None:
        """MixUp / CutMix over the classes found, or None."""
        return self.augmentation.batch_mixing(self.num_classes(), self.multi_label)

    @functools.cached_property
    def device_transforms(self) -> tuple[v2.Transform, torch.nn.Module | None]:
        """(per image, per batch) augmentation with `decode_on_device`, made once."""
        return self.augmentation.device_transforms(self.image_size, self.crop_pct)

    def before_transfer(self, batch: Any, trainer: Any) -> Any:
        """With `decode_on_device`, decode and transform the batch on the training device."""
        if not isinstance(batch, UndecodedBatch):
            return batch
        device = trainer.strategy.root_device if trainer else torch.device("cpu")
        try:
            return self._decode(batch, device, trainer)
        except Exception as error:
            if trainer is None or not is_device_error(error):
                raise
            message = device_failure_message(error, device, trainer.global_step)
            if not self.defer_device_failures:
                raise DeviceFailure(message) from error
            self.device_failure = self.device_failure or message
            if device.type == "cuda":
                torch.cuda.empty_cache()
            shape = (len(batch.paths), 3, self.image_size, self.image_size)
            blank = torch.zeros(shape, dtype=torch.uint8, device=device)
            return blank, batch.labels

    def _decode(self, batch: UndecodedBatch, device: torch.device, trainer: Any) -> Any:
        failures = (self.read_failures, self.max_read_failures, self.tally)
        if not (trainer is not None and trainer.training):
            evaluation = eval_transform(self.image_size, self.crop_pct)
            return decode_batch(batch, device, evaluation, *failures)
        per_image, per_batch = self.device_transforms
        with self.randomness.active(trainer.global_rank):
            return decode_batch(batch, device, per_image, *failures, batch_transform=per_batch)
