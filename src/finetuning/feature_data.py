"""Serve cached backbone features instead of images when only the head trains."""

from __future__ import annotations

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

from src.data.datamodule import ImageFolderDataModule
from src.data.dataset import ImageFileDataset
from src.data.images import DECODING
from src.data.transforms import eval_transform, resize_size_for
from src.finetuning.feature_cache import (
    FeatureCache,
    cache_key,
    compute_features,
    files_fingerprint,
    weights_fingerprint,
)

#: Batch size for computing features: inference only, so larger than training batches is fine.
FEATURE_BATCH_SIZE = 64


class CachedFeatureDataModule(L.LightningDataModule):
    """(features, label) batches from tensors in memory: no decoding, no backbone."""

    def __init__(self, train: TensorDataset, val: TensorDataset, batch_size: int) -> None:
        super().__init__()
        self.train_set, self.val_set, self.batch_size = train, val, batch_size

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=self.batch_size)


def cached_features(
    images: ImageFolderDataModule, model, cache: FeatureCache
) -> CachedFeatureDataModule:
    """Features of the train and val images under the model's current backbone weights.

    Both splits use the deterministic validation transform (resize + center crop): augmented
    views would differ every epoch, which is exactly what a cache cannot hold.
    """
    images.setup("fit")
    transform = eval_transform(images.image_size)
    draft = resize_size_for(images.image_size)
    common = {
        "model": model.hparams.model["name"],
        "weights": weights_fingerprint(model.net, model.head_name),
        "image_size": str(images.image_size),
        "transform": repr(transform),
        "decoding": DECODING,
        "normalisation": f"{model.hparams.model['mean']}|{model.hparams.model['std']}",
    }
    head = model.net.get_submodule(model.head_name)
    train, val = images.train_samples, images.val_samples
    key = cache_key(**common, train=files_fingerprint(train), val=files_fingerprint(val))

    def compute() -> dict[str, torch.Tensor]:
        # One pass over both splits: one loader start-up, batches as large as fit comfortably.
        both = ImageFileDataset([*train, *val], transform, images.max_pixels, (draft, draft))
        batch_size = max(images.batch_size, FEATURE_BATCH_SIZE)
        features, labels = compute_features(model, head, both, batch_size, images.num_workers)
        return {
            "train_features": features[: len(train)],
            "train_labels": labels[: len(train)],
            "val_features": features[len(train) :],
            "val_labels": labels[len(train) :],
        }

    stored = cache.load_or_compute(key, compute)
    return CachedFeatureDataModule(
        TensorDataset(stored["train_features"], stored["train_labels"]),
        TensorDataset(stored["val_features"], stored["val_labels"]),
        images.batch_size,
    )
