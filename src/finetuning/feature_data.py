"""Serve cached backbone features instead of images when only the head trains."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

from src.data.datamodule import ImageFolderDataModule
from src.data.images import DECODING
from src.data.transforms import eval_transform
from src.finetuning.feature_cache import (
    FeatureCache,
    cache_key,
    compute_features,
    files_fingerprint,
    weights_fingerprint,
)

log = logging.getLogger(__name__)

#: Batch size for computing features: inference only, so larger than training batches is fine.
FEATURE_BATCH_SIZE = 64


class CachedFeatureDataModule(L.LightningDataModule):
    """(features, label) batches of the image data's train and val splits.

    The features are those of the module being fitted (`trainer.lightning_module`), computed on
    first use: by then Lightning has moved the module to its device and restored any checkpoint
    it resumes from. Checkpoints record the image data's settings, which `evaluate` rebuilds.
    """

    def __init__(self, images: ImageFolderDataModule, cache: FeatureCache) -> None:
        super().__init__()
        self.save_hyperparameters(images.hparams, logger=False)
        self.images = images
        self.cache = cache
        self._datasets: tuple[TensorDataset, TensorDataset] | None = None

    @property
    def class_names(self) -> list[str]:
        return self.images.class_names

    def prepare_data(self) -> None:
        self.images.prepare_data()

    def setup(self, stage: str) -> None:
        self.images.trainer = self.trainer
        self.images.setup(stage)
        if stage == "fit" and self.images.augment.get("enabled", True):
            log.info(
                "freeze.cache_features=true: the head trains on the features of center crops; "
                "data.augment does not apply (freeze.cache_features=false trains on augmented "
                "images)"
            )

    def train_dataloader(self) -> DataLoader:
        """Shuffled, or with `data.balance_classes` every class drawn equally often (the
        features are in the order of the image data's training samples)."""
        train, _ = self.datasets()
        if self.images.balance_classes:
            sampler = self.images.balanced_sampler()
            return DataLoader(train, batch_size=self.images.batch_size, sampler=sampler)
        return DataLoader(train, batch_size=self.images.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        _, val = self.datasets()
        return DataLoader(val, batch_size=self.images.batch_size)

    def datasets(self) -> tuple[TensorDataset, TensorDataset]:
        if self._datasets is None:
            self._datasets = cached_features(
                self.images,
                self.trainer.lightning_module,
                self.cache,
                precision=str(self.trainer.precision),
                precision_context=self.trainer.precision_plugin.forward_context,
            )
        return self._datasets


def cached_features(
    images: ImageFolderDataModule,
    model: Any,
    cache: FeatureCache,
    precision: str = "32-true",
    precision_context: Callable[[], AbstractContextManager] = nullcontext,
) -> tuple[TensorDataset, TensorDataset]:
    """(train, val) features under the model's current backbone weights, on its device, computed
    under the trainer's precision (`precision_context`, e.g. autocast for bf16-mixed), as the
    backbone would run in training.

    `model` is an `ImageClassifier` (its `net`, `head_name` and `hparams.model`). Both splits use
    the deterministic validation transform (resize + center crop): augmented views would differ
    every epoch, which is exactly what a cache cannot hold.
    """
    images.setup("fit")
    common = {
        "model": model.hparams.model["name"],
        "weights": weights_fingerprint(model.net, model.head_name),
        "image_size": str(images.image_size),
        "transform": repr(eval_transform(images.image_size)),
        "decoding": DECODING,
        "normalisation": f"{model.hparams.model['mean']}|{model.hparams.model['std']}",
        "precision": precision,
    }
    train, val = images.train_samples, images.val_samples
    key = cache_key(**common, train=files_fingerprint(train), val=files_fingerprint(val))

    def compute() -> dict[str, torch.Tensor]:
        # One pass over both splits: one loader start-up, batches as large as fit comfortably.
        loader = images.eval_loader([*train, *val], max(images.batch_size, FEATURE_BATCH_SIZE))
        with precision_context():
            features, labels = compute_features(model, model.head, loader)
        return {
            "train_features": features[: len(train)],
            "train_labels": labels[: len(train)],
            "val_features": features[len(train) :],
            "val_labels": labels[len(train) :],
        }

    stored = cache.load_or_compute(key, compute)
    return (
        TensorDataset(stored["train_features"], stored["train_labels"]),
        TensorDataset(stored["val_features"], stored["val_labels"]),
    )
