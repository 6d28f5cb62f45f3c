"""The yardstick: the classic plain PyTorch transfer-learning loop of the tutorial.

torchvision `ImageFolder` (PIL decoding), transforms v1 `Compose`, `DataLoader`, a manual
train/val loop with SGD and StepLR. Two deliberate deviations make its numbers comparable with
the project's: BatchNorm inside frozen children stays in eval mode (the project's freeze
policy), and the best weights are not deep-copied (the project saves no checkpoint either here).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torchvision
from torch import nn
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

from benchmarks.timing import RunTimes


@dataclass(frozen=True)
class ReferenceSettings:
    """Everything the tutorial hard-codes, filled in from the project's composed config."""

    model: str
    trainable: Sequence[str] | None  # top-level children that train (None: all); the head trains
    image_size: int
    resize_size: int
    batch_size: int
    workers: int
    epochs: int
    lr: float
    momentum: float
    step_size: int
    gamma: float
    mean: Sequence[float]
    std: Sequence[float]
    rotation_degrees: float = 15
    weights: Path | None = None
    seed: int = 42
    device: str = "cpu"  # the project's: the reference runs where the project runs


def data_transforms(s: ReferenceSettings) -> dict[str, transforms.Compose]:
    """The tutorial's PIL pipelines, at the benchmark's image size."""
    normalize = transforms.Normalize(s.mean, s.std)
    return {
        "train": transforms.Compose(
            [
                transforms.RandomResizedCrop(s.image_size),
                transforms.RandomRotation(s.rotation_degrees),
                transforms.RandomHorizontalFlip(),
                transforms.ToTensor(),
                normalize,
            ]
        ),
        "val": transforms.Compose(
            [
                transforms.Resize(s.resize_size),
                transforms.CenterCrop(s.image_size),
                transforms.ToTensor(),
                normalize,
            ]
        ),
    }


def last_linear(model: nn.Module) -> tuple[nn.Module, str]:
    """Parent module and attribute of the classifier head (`fc` on a ResNet)."""
    name = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)][-1]
    parent_name, _, attribute = name.rpartition(".")
    return (model.get_submodule(parent_name) if parent_name else model), attribute


def build_model(s: ReferenceSettings, num_classes: int) -> tuple[nn.Module, list[nn.Module]]:
    """Network with the weights file loaded (1000-class head), frozen as asked, new head.

    Returns the model and the BatchNorm layers of its frozen children.
    """
    model = torchvision.models.get_model(s.model, weights=None)
    if s.weights is not None:
        state = torch.load(s.weights, map_location="cpu", weights_only=True)
        model.load_state_dict({k: v.float() for k, v in state.items()})
    frozen_bn: list[nn.Module] = []
    for name, child in model.named_children():
        if s.trainable is not None and name not in s.trainable:
            for parameter in child.parameters():
                parameter.requires_grad = False
            frozen_bn += [
                m for m in child.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
            ]
    parent, attribute = last_linear(model)
    head = getattr(parent, attribute)
    torch.manual_seed(s.seed)
    setattr(parent, attribute, nn.Linear(head.in_features, num_classes))
    return model, frozen_bn


def run_reference(data_dir: Path, s: ReferenceSettings) -> RunTimes:
    """Train and validate as the tutorial does; time each phase like the project's PhaseTimer."""
    started = time.perf_counter()
    torch.manual_seed(s.seed)
    tfms = data_transforms(s)
    image_datasets = {x: datasets.ImageFolder(data_dir / x, tfms[x]) for x in ("train", "val")}
    dataloaders = {
        x: DataLoader(
            image_datasets[x], batch_size=s.batch_size, shuffle=x == "train", num_workers=s.workers
        )
        for x in ("train", "val")
    }
    model, frozen_bn = build_model(s, len(image_datasets["train"].classes))
    model = model.to(s.device)
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(
        [p for p in model.parameters() if p.requires_grad], lr=s.lr, momentum=s.momentum
    )
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=s.step_size, gamma=s.gamma)

    times = RunTimes(threads=torch.get_num_threads())
    for _epoch in range(s.epochs):
        for phase in ("train", "val"):
            model.train(phase == "train")
            for module in frozen_bn:
                module.eval()
            phase_started = time.perf_counter()
            running_corrects = 0
            for inputs, labels in dataloaders[phase]:
                inputs, labels = inputs.to(s.device), labels.to(s.device)
                optimizer.zero_grad()
                with torch.set_grad_enabled(phase == "train"):
                    outputs = model(inputs)
                    _, preds = torch.max(outputs, 1)
                    loss = criterion(outputs, labels)
                    if phase == "train":
                        loss.backward()
                        optimizer.step()
                running_corrects += int(torch.sum(preds == labels))
            elapsed = time.perf_counter() - phase_started
            seen = len(image_datasets[phase])
            if phase == "train":
                scheduler.step()
                times.train_images += seen
                times.train_s += elapsed
            else:
                times.val_images += seen
                times.val_s += elapsed
                times.val_acc = running_corrects / seen
                times.epoch_val_acc.append(times.val_acc)
                times.epoch_end_s.append(time.perf_counter() - started)
    times.wall_s = time.perf_counter() - started
    return times
