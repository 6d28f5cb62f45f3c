"""A cache file that cannot be read is computed again and replaced, with one warning."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from src.finetuning.feature_cache import FeatureCache


def test_an_unreadable_feature_file_is_recomputed(tmp_path: Path, caplog) -> None:
    cache = FeatureCache(tmp_path)
    tensors = {"train_features": torch.ones(2, 3)}
    cache.load_or_compute("key", lambda: tensors)
    path = cache.path("key")
    path.write_bytes(path.read_bytes()[:40])  # truncated, as by a crash of the machine

    with caplog.at_level(logging.WARNING):
        again = cache.load_or_compute("key", lambda: {"train_features": torch.zeros(2, 3)})
    assert cache.computed == 2
    assert torch.equal(again["train_features"], torch.zeros(2, 3))
    assert torch.equal(torch.load(path, weights_only=True)["train_features"], torch.zeros(2, 3))
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "cannot be read" in warnings[0].getMessage()
    assert cache.load_or_compute("key", lambda: tensors) is not None and cache.computed == 2
