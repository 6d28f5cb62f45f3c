"""Backbone features computed once per image and kept on disk, for the fixed feature extractor.

When only the head trains, the backbone's output for an image never changes between epochs:
computing it once and training the head on it gives the same logits as running the whole
network every epoch, at a fraction of the cost. The cache key covers everything that changes the
features (network name, every backbone weight, image size, transform, normalisation and the
exact files with their sizes and modification times), so any change recomputes.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader

from src.data.samples import Sample
from src.networks.blocks import within
from src.utils.console import progress
from src.utils.devices import wait_until
from src.utils.errors import one_line
from src.utils.io import atomic_output

log = logging.getLogger(__name__)


def weights_fingerprint(net: nn.Module, head_name: str) -> str:
    """A digest of every backbone tensor (the head is left out: it is what trains)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(net.state_dict().items()):
        if within(name, head_name):
            continue
        digest.update(name.encode())
        # The raw bytes, whatever the dtype (numpy has no bfloat16).
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def files_fingerprint(samples: Sequence[Sample]) -> str:
    digest = hashlib.sha256()
    for sample in samples:
        stat = sample.path.stat()
        labels = ",".join(map(str, sample.labels))
        digest.update(f"{sample.path}|{stat.st_size}|{stat.st_mtime_ns}|{labels}\n".encode())
    return digest.hexdigest()


def cache_key(**parts: str) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:32]


def compute_features(
    model: nn.Module,
    head: nn.Module,
    loader: DataLoader,
    description: str = "Computing backbone features",
) -> tuple[torch.Tensor, torch.Tensor]:
    """(features that enter the head, labels) for every batch of `loader`, in order, computed
    on the model's device."""
    captured: list[torch.Tensor] = []
    hook = head.register_forward_pre_hook(lambda _, args: captured.append(args[0].float().cpu()))
    labels: list[torch.Tensor] = []
    was_training = model.training
    model.eval()
    # Channels-last convolutions: 1.27x the images per second of ResNet34 at 224 px on a 2-core
    # x86 CPU (docs/benchmarks.md); the weights return to their layout afterwards.
    model.to(memory_format=torch.channels_last)
    device = next(model.parameters()).device
    try:
        with torch.inference_mode():
            for images, targets in progress(loader, description):
                model(images.to(device, non_blocking=True, memory_format=torch.channels_last))
                labels.append(targets)
    finally:
        hook.remove()
        model.to(memory_format=torch.contiguous_format)
        model.train(was_training)
    return torch.cat(captured), torch.cat(labels)


class FeatureCache:
    """Feature files under `directory`, one per key, written atomically."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.computed = 0  # how many times features had to be computed (for tests and logs)

    def path(self, key: str) -> Path:
        return self.directory / f"{key}.pt"

    def load_or_compute(
        self,
        key: str,
        compute: Callable[[], dict[str, torch.Tensor]],
        wait_s: float | None = None,
    ) -> dict[str, torch.Tensor]:
        """The tensors stored under `key`, computed (and stored) by `compute` when missing.

        With `wait_s`, another process builds them (process 0 of a run: the cache dir is on the
        data's shared file system): this one waits up to `wait_s` seconds for the file instead.
        """
        path = self.path(key)
        if wait_s is not None:
            wait_until(path.is_file, wait_s, f"the cached features {path}")
        if path.is_file():
            try:
                tensors = torch.load(path, map_location="cpu", weights_only=True)
                log.info("Using cached features %s", path)
                return tensors
            except Exception as error:  # truncated, corrupt, older format: compute it again
                log.warning(
                    "Cached features %s cannot be read (%s); computing them again",
                    path,
                    one_line(error)[:200],
                )
        tensors = compute()
        self.computed += 1
        with atomic_output(path) as handle:
            torch.save(tensors, handle)
        log.info("Cached features in %s", path)
        return tensors
