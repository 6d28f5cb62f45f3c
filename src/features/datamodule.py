"""Serve cached backbone features instead of images when only the head trains."""

from __future__ import annotations

import lightning as L
from torch.utils.data import DataLoader, TensorDataset

from src.data.datamodule import ImageFolderDataModule
from src.data.dataset import ImageFileDataset
from src.data.samples import Sample
from src.data.transforms import eval_transform, resize_size_for
from src.features.cache import (
    FeatureCache,
    cache_key,
    compute_features,
    files_fingerprint,
    weights_fingerprint,
)


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
        "normalisation": f"{model.hparams.model['mean']}|{model.hparams.model['std']}",
    }
    head = model.net.get_submodule(model.head_name)

    def features_of(samples: list[Sample], split: str) -> TensorDataset:
        dataset = ImageFileDataset(samples, transform, images.max_pixels, (draft, draft))
        key = cache_key(**common, split=split, files=files_fingerprint(samples))
        features, labels = cache.load_or_compute(
            key,
            lambda: compute_features(model, head, dataset, images.batch_size, images.num_workers),
            split,
        )
        return TensorDataset(features, labels)

    return CachedFeatureDataModule(
        features_of(images.train_samples, "train"),
        features_of(images.val_samples, "val"),
        images.batch_size,
    )
