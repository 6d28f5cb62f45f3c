"""Bad or awkward data: files that break mid-run, single or imbalanced classes, symlinks."""

from __future__ import annotations

import collections
import os
from pathlib import Path

import pytest

from src.data.dataset import TooManyUnreadableFiles
from src.train import train
from src.utils.errors import UserError
from tests.helpers import TINY, ready_datamodule, run_module
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


@pytest.mark.slow
def test_files_breaking_in_loader_workers_stop_the_run_from_the_training_process(
    make_config, folder_overrides
) -> None:
    """The loader workers count the failures in memory they share with the training process,
    which stops the run at its next check: not inside a worker, where under DDP only that
    process would stop."""
    cfg = make_config(
        [
            *folder_overrides,
            "data.num_workers=2",
            "data.max_read_failures=1",
            "trainer.limit_train_batches=null",
            "+callbacks.break_files._target_=tests.helpers.fault_helpers.BreakTrainingFiles",
        ]
    )
    message = (
        r"files became unreadable during the run \(their names are in the warnings\), more "
        r"than data.max_read_failures=1; check the data folder \(stopped at step \d+\)"
    )
    with pytest.raises(TooManyUnreadableFiles, match=message):
        train(cfg)


@pytest.mark.slow
def test_files_breaking_in_one_process_stop_every_process(
    stripes_root: Path, tmp_path: Path
) -> None:
    """Two DDP processes on the CPU; only the second one's files break. Raised in its loader,
    the first process would wait in the next all-reduce until the process-group timeout."""
    result = run_module(
        "src.train", "data=folder", f"data.root={stripes_root}", *TINY,
        "trainer.accelerator=cpu", "trainer.devices=2", "data.max_read_failures=0",
        "+callbacks.break_files._target_=tests.helpers.fault_helpers.BreakTrainingFiles",
        "+callbacks.break_files.rank=1",
        cwd=tmp_path, timeout=240,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr[-3000:]
    assert "(their names are in the warnings), more than data.max_read_failures=0" in (
        result.stderr
    )  # the second process
    assert "became unreadable in another process of the run" in result.stderr  # the first


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
