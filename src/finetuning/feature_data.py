"""Serve cached backbone features instead of images when only the head trains."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from src.data.datamodule import ImageDataModule
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

    def __init__(self, images: ImageDataModule, cache: FeatureCache, views: int = 0) -> None:
        super().__init__()
        self.save_hyperparameters(images.hparams, logger=False)
        self.images = images
        self.cache = cache
        self.views = views
        self._datasets: tuple[Dataset, TensorDataset] | None = None

    @property
    def class_names(self) -> list[str]:
        return self.images.class_names

    def prepare_data(self) -> None:
        self.images.prepare_data()

    def setup(self, stage: str) -> None:
        self.images.trainer = self.trainer
        self.images.setup(stage)
        if stage != "fit" or not self.images.augment.get("enabled", True):
            return
        if self.views:
            log.info(
                "freeze.cached_views=%d: the head trains on the features of %d augmented views "
                "of each image, computed once; each epoch draws one view per image",
                self.views,
                self.views,
            )
        else:
            log.info(
                "freeze.cache_features=true: the head trains on the features of center crops; "
                "data.augment does not apply (freeze.cached_views=N caches N augmented views, "
                "freeze.cache_features=false trains on augmented images)"
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

    def validation_features(self) -> torch.Tensor | None:
        """The validation images' cached features [N, F] (in `images.val_samples` order), when
        computed in float32 as evaluation runs; else None."""
        if self._datasets is None or self.trainer.precision not in ("32-true", "32"):
            return None
        return self._datasets[1].tensors[0]

    def datasets(self) -> tuple[Dataset, TensorDataset]:
        if self._datasets is None:
            self._datasets = cached_features(
                self.images,
                self.trainer.lightning_module,
                self.cache,
                precision=str(self.trainer.precision),
                precision_context=self.trainer.precision_plugin.forward_context,
                views=self.views,
                wait_s=None if self.trainer.is_global_zero else self.images.prepare_timeout_s,
            )
        return self._datasets


class RandomViewFeatures(Dataset):
    """(the features of one of an image's cached augmented views, label): the view is drawn
    anew at every access, so each epoch sees another mix of views."""

    def __init__(self, views: torch.Tensor, labels: torch.Tensor) -> None:
        self.views = views  # [views, images, features]
        self.labels = labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        view = int(torch.randint(len(self.views), ()))
        return self.views[view, index], self.labels[index]


def cached_features(
    images: ImageDataModule,
    model: Any,
    cache: FeatureCache,
    precision: str = "32-true",
    precision_context: Callable[[], AbstractContextManager] = nullcontext,
    views: int = 0,
    wait_s: float | None = None,
) -> tuple[Dataset, TensorDataset]:
    """(train, val) features under the model's current backbone weights, on its device, computed
    under the trainer's precision (`precision_context`, e.g. autocast for bf16-mixed), as the
    backbone would run in training.

    `model` is an `ImageClassifier` (its `net`, `head_name` and `hparams.model`). Validation
    images, and with `views=0` training images too, go through the deterministic transform
    (resize + center crop). With `views=K`, each training image is augmented K times, once
    per pass of the augmented loader (its workers draw new crops each pass, from the run's
    seed), and the training set serves one of the K views per image at every access.
    With `wait_s`, another process of the run computes them and this one waits for them.
    """
    images.setup("fit")
    common = {
        "source": str(model.hparams.model.get("source")),
        "model": model.hparams.model["name"],
        "weights": weights_fingerprint(model.net, model.head_name),
        "image_size": str(images.image_size),
        "transform": repr(eval_transform(images.image_size, images.crop_pct)),
        "decoding": DECODING,
        "normalisation": f"{model.hparams.model['mean']}|{model.hparams.model['std']}",
        "precision": precision,
    }
    if views:
        augmentation = repr(images.train_transform())
        common |= {
            "views": str(views),
            "augmentation": augmentation,
            "seed": str(torch.initial_seed()),
        }
    train, val = images.train_samples, images.val_samples
    key = cache_key(**common, train=files_fingerprint(train), val=files_fingerprint(val))
    batch_size = max(images.batch_size, FEATURE_BATCH_SIZE)

    def run(loader: DataLoader, description: str) -> tuple[torch.Tensor, torch.Tensor]:
        with precision_context():
            return compute_features(model, model.head, loader, description)

    def compute() -> dict[str, torch.Tensor]:
        if not views:
            # One pass over both splits: one loader start-up.
            loader = images.eval_loader([*train, *val], batch_size)
            features, labels = run(loader, "Computing backbone features")
            return {
                "train_features": features[: len(train)],
                "train_labels": labels[: len(train)],
                "val_features": features[len(train) :],
                "val_labels": labels[len(train) :],
            }
        val_features, val_labels = run(
            images.eval_loader(val, batch_size), "Computing validation features"
        )
        passes = [
            run(images.augmented_train_loader(batch_size), f"Computing view {view + 1}/{views}")
            for view in range(views)
        ]
        return {
            "train_views": torch.stack([features for features, _ in passes]),
            "train_labels": passes[0][1],
            "val_features": val_features,
            "val_labels": val_labels,
        }

    stored = cache.load_or_compute(key, compute, wait_s)
    val_set = TensorDataset(stored["val_features"], stored["val_labels"])
    if views:
        return RandomViewFeatures(stored["train_views"], stored["train_labels"]), val_set
    return TensorDataset(stored["train_features"], stored["train_labels"]), val_set
