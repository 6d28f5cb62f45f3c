"""Bad or awkward data: files that break mid-run, single or imbalanced classes, symlinks."""

from __future__ import annotations

import collections
import os
from pathlib import Path

import pytest

from src.data.dataset import TooManyUnreadableFiles
from src.train import train
from src.utils.errors import UserError
from tests.helpers import TINY, ready_datamodule
from tests.helpers.image_factory import write_class_folders


def test_files_that_break_mid_run_are_skipped_then_stop_the_run(tmp_path: Path, caplog) -> None:
    dm = ready_datamodule(
        write_class_folders(tmp_path / "images", {"a": 6, "b": 6}), val_fraction=0.5
    )
    dataset = dm.train_dataset()
    broken = [dataset.samples[0].path, dataset.samples[1].path]
    broken[0].unlink()
    broken[1].write_bytes(b"<html>replaced by junk</html>")
    items = [dataset[i] for i in range(len(dataset))]
    assert len(items) == len(dataset) and all(image.shape == (3, 32, 32) for image, _ in items)
    assert set(dataset.read_failures) == set(broken)
    assert "unreadable since the start of the run" in caplog.text

    strict = dm.train_dataset()
    strict.max_read_failures = 1
    with pytest.raises(
        TooManyUnreadableFiles, match=r"2 files became unreadable.*max_read_failures=1"
    ):
        [strict[i] for i in range(len(strict))]


def test_single_class_is_refused(tmp_path: Path, make_config) -> None:
    root = write_class_folders(tmp_path / "images", {"only": 5})
    with pytest.raises(UserError, match=r"single class.*at least two"):
        train(make_config(["data=folder", f"data.root={root}", *TINY]))


def test_imbalance_is_reported_and_balanced_sampling_evens_it(tmp_path: Path, caplog) -> None:
    root = write_class_folders(tmp_path / "images", {"rare": 5, "common": 40})
    dm = ready_datamodule(root, val_fraction=0.2)
    assert "Classes are imbalanced" in caplog.text and "balance_classes=true" in caplog.text
    balanced = ready_datamodule(root, val_fraction=0.2, balance_classes=True)
    labels = collections.Counter()
    for _ in range(20):
        labels.update(int(balanced.train_samples[i].label) for i in balanced.balanced_sampler())
    share_rare = labels[balanced.class_names.index("rare")] / sum(labels.values())
    assert 0.4 < share_rare < 0.6
    assert len(dm.train_samples) == len(balanced.train_samples)


def test_symlinked_class_folders_and_files_are_followed(tmp_path: Path) -> None:
    source = write_class_folders(tmp_path / "elsewhere", {"a": 3, "b": 3})
    root = tmp_path / "images"
    root.mkdir()
    os.symlink(source / "a", root / "a")
    (root / "b").mkdir()
    for image in (source / "b").iterdir():
        os.symlink(image, root / "b" / f"link to {image.name}")
    dm = ready_datamodule(root)
    assert len(dm.train_samples) + len(dm.val_samples) == 6
