"""Small `ImageClassifier`s built directly, without a config (the unit tests' models)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from src.models.classifier import ImageClassifier
from src.models.tasks import MULTICLASS

#: torchvision's ImageNet normalisation, as conf/model/resnet34.yaml sets it.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def build_classifier(
    trainable: Sequence[str] | None = None,
    *,
    name: str = "resnet18",
    class_names: Sequence[str] = ("horizontal", "vertical"),
    model: Mapping[str, Any] | None = None,
    train_bn: bool | None = None,
    unfreeze_at: Mapping[str, int] | None = None,
    cache_features: bool | None = None,
    lr: float = 0.01,
    momentum: float | None = None,
    backbone_lr_mult: float | None = None,
    layer_decay: float | None = None,
    scheduler: Mapping[str, Any] | None = None,
    image_size: int = 224,
    seed: int | None = None,
    task: str = MULTICLASS,
) -> ImageClassifier:
    """A torchvision `name` network (randomly initialised) with a head for `class_names`.

    - `trainable`: `freeze.trainable`, the top-level children that train (None: all of them);
      `train_bn`, `unfreeze_at` and `cache_features` join the freeze settings when given.
    - `model`: more model settings (`pretrained`, `weights_path`, ...) beside the name and the
      ImageNet normalisation.
    - the optimizer is SGD at `lr`; `momentum`, `backbone_lr_mult` and `layer_decay` join it
      when given.
    - `scheduler` and `image_size` are the module's own arguments (defaults: none, 224).
    - `seed`: seeds torch first, for the same initial weights every time.
    - `task`: multiclass, or multilabel (a sigmoid per class).
    """
    if seed is not None:
        torch.manual_seed(seed)
    freeze = {"trainable": None if trainable is None else list(trainable)}
    for key, value in (
        ("train_bn", train_bn),
        ("unfreeze_at", unfreeze_at),
        ("cache_features", cache_features),
    ):
        if value is not None:
            freeze[key] = dict(value) if isinstance(value, Mapping) else value
    optimizer: dict[str, Any] = {"_target_": "torch.optim.SGD", "lr": lr}
    own = (("backbone_lr_mult", backbone_lr_mult), ("layer_decay", layer_decay))
    for key, value in (("momentum", momentum), *own):
        if value is not None:
            optimizer[key] = value
    return ImageClassifier(
        class_names=list(class_names),
        model={
            "name": name,
            "mean": list(IMAGENET_MEAN),
            "std": list(IMAGENET_STD),
            **(model or {}),
        },
        freeze=freeze,
        optimizer=optimizer,
        scheduler=None if scheduler is None else dict(scheduler),
        image_size=image_size,
        task=task,
    )
