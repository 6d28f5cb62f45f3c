"""The data module: seeded stratified split, predefined train/val, bad files, clear errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import src.data.image_checks as image_checks
from src.data.sources.folder import ImageFolderDataModule
from src.utils.devices import default_num_workers
from src.utils.errors import UserError
from tests.helpers import ready_datamodule
from tests.helpers.image_factory import (
    unusable_names,
    write_broken_files,
    write_class_folders,
    write_rgb_jpeg,
)


def names(samples) -> list[str]:
    return [s.path.name + s.path.parent.name for s in samples]


def test_split_is_stratified_and_deterministic(tmp_path: Path) -> None:
    root = write_class_folders(tmp_path / "images", {"a": 20, "b": 10, "c": 5})
    first = ready_datamodule(root, val_fraction=0.2, split_seed=7)
    again = ready_datamodule(root, val_fraction=0.2, split_seed=7)
    other = ready_datamodule(root, val_fraction=0.2, split_seed=8)
    assert names(first.val_samples) == names(again.val_samples)
    assert names(first.train_samples) == names(again.train_samples)
    assert set(names(first.val_samples)) != set(names(other.val_samples))
    val_per_class = [sum(1 for s in first.val_samples if s.label == k) for k in range(3)]
    assert val_per_class == [4, 2, 1]
    assert not set(names(first.train_samples)) & set(names(first.val_samples))
    assert len(first.train_samples) + len(first.val_samples) == 35


def test_file_lists_are_written(tmp_path: Path) -> None:
    root = write_class_folders(tmp_path / "images", {"cat": 5, "dog": 5})
    dm = ready_datamodule(root, file_list_dir=str(tmp_path / "run"))
    lines = (tmp_path / "run" / "val_files.txt").read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(dm.val_samples) == 2
    assert all(line.split("\t")[1] in {"cat", "dog"} for line in lines)
    assert (tmp_path / "run" / "train_files.txt").is_file()


def test_predefined_train_val_folders_are_used(tmp_path: Path) -> None:
    write_class_folders(tmp_path / "images" / "train", {"x": 4, "y": 3})
    write_class_folders(tmp_path / "images" / "val", {"x": 2, "y": 1})
    dm = ready_datamodule(tmp_path / "images")
    assert dm.class_names == ["x", "y"]
    assert (len(dm.train_samples), len(dm.val_samples)) == (7, 3)


def test_broken_files_are_excluded_and_reported(tmp_path: Path) -> None:
    root = write_class_folders(tmp_path / "images", {"cat": 4, "dog": 4})
    expected = write_broken_files(root / "dog")
    dm = ready_datamodule(root, file_list_dir=str(tmp_path / "run"))
    excluded = {Path(name).name for name in dm.excluded}
    assert excluded == unusable_names(expected)
    report = (tmp_path / "run" / "excluded_files.txt").read_text(encoding="utf-8")
    assert "bomb.png\tdecompression bomb" in report
    usable = len(expected) - len(excluded)
    assert len(dm.train_samples) + len(dm.val_samples) == 8 + usable
    # every remaining file loads as a uint8 RGB tensor of the configured size
    for dataset in (dm.train_dataset(), dm.val_dataset()):
        for index in range(len(dataset)):
            image, _ = dataset[index]
            assert image.dtype == torch.uint8 and image.shape == (3, 32, 32)


def test_image_checks_are_cached(tmp_path: Path, monkeypatch) -> None:
    root = write_class_folders(tmp_path / "images", {"a": 3, "b": 3})
    ready_datamodule(root, cache_dir=str(tmp_path / "cache"))

    def must_not_decode(*args, **kwargs):
        raise AssertionError("decoded again although unchanged")

    monkeypatch.setattr(image_checks, "check_image", must_not_decode)
    ready_datamodule(root, cache_dir=str(tmp_path / "cache"))
    write_rgb_jpeg(root / "a" / "new.jpg")  # a new file is checked
    with pytest.raises(AssertionError, match="decoded again"):
        ready_datamodule(root, cache_dir=str(tmp_path / "cache"))


def test_processes_other_than_0_wait_for_its_image_checks(tmp_path: Path, monkeypatch) -> None:
    """srun / torchrun start every process at once: process 0 decode-checks the files, the
    others wait for its verdicts in the shared cache (or name what they waited for)."""
    root = write_class_folders(tmp_path / "images", {"a": 3, "b": 3})
    cache = str(tmp_path / "cache")
    monkeypatch.setenv("RANK", "1")
    with pytest.raises(UserError, match=r"waited 0 s for the image checks of .*images"):
        ready_datamodule(root, cache_dir=cache, prepare_timeout_s=0.3)

    monkeypatch.setenv("RANK", "0")
    ready_datamodule(root, cache_dir=cache)
    monkeypatch.setenv("RANK", "1")

    def must_not_decode(*args, **kwargs):
        raise AssertionError("decoded although process 0 did")

    monkeypatch.setattr(image_checks, "check_image", must_not_decode)
    assert len(ready_datamodule(root, cache_dir=cache, prepare_timeout_s=0.3).samples) == 6


def no_folder(root: Path) -> None:
    """Nothing at `root`."""


def empty_folder(root: Path) -> None:
    root.mkdir()


def class_without_images(root: Path) -> None:
    """Class `a` with three JPEGs, class `b` with a text file only."""
    root.mkdir()
    write_class_folders(root, {"a": 3})
    (root / "b").mkdir()
    (root / "b" / "notes.txt").write_text("no images here")


def class_with_only_broken_images(root: Path) -> None:
    """As `class_without_images`, and class `b` also holds a zero-byte JPEG."""
    class_without_images(root)
    (root / "b" / "broken.jpg").write_bytes(b"")


@pytest.mark.parametrize(
    ("lay_out", "message"),
    [
        pytest.param(no_folder, "does not exist", id="missing"),
        pytest.param(empty_folder, "has no class sub-folders", id="empty"),
        pytest.param(class_without_images, "holds no image files", id="class_without_images"),
        pytest.param(
            class_with_only_broken_images, "holds no usable image", id="class_with_only_broken"
        ),
    ],
)
def test_clear_errors_name_the_path(
    tmp_path: Path, lay_out: Callable[[Path], None], message: str
) -> None:
    root = tmp_path / "images"
    lay_out(root)
    with pytest.raises(UserError, match=message) as info:
        ready_datamodule(root)
    assert str(root) in str(info.value)


def test_bad_settings_are_refused(tmp_path: Path) -> None:
    root = write_class_folders(tmp_path / "images", {"a": 3, "b": 3})
    with pytest.raises(UserError, match="val_fraction"):
        ready_datamodule(root, val_fraction=1.5)
    with pytest.raises(UserError, match="batch_size"):
        ImageFolderDataModule(str(root), batch_size=0)


def test_image_checks_are_cached_for_train_and_val_folders(tmp_path: Path, monkeypatch) -> None:
    write_class_folders(tmp_path / "images" / "train", {"x": 3, "y": 3})
    write_class_folders(tmp_path / "images" / "val", {"x": 2, "y": 2})
    ready_datamodule(tmp_path / "images", cache_dir=str(tmp_path / "cache"))

    def must_not_decode(*args, **kwargs):
        raise AssertionError("decoded again although unchanged")

    monkeypatch.setattr(image_checks, "check_image", must_not_decode)
    dm = ready_datamodule(tmp_path / "images", cache_dir=str(tmp_path / "cache"))
    assert (len(dm.train_samples), len(dm.val_samples)) == (6, 4)


@pytest.mark.parametrize(
    ("cores", "torch_threads", "model_on_cpu", "workers"),
    [
        (2, 2, False, 2),  # the model on a GPU: a worker per core
        (16, 16, False, 8),  # at most 8
        (2, 2, True, 0),  # the model's threads take every core: load between steps
        (6, 4, True, 2),  # only the cores the model's threads leave free
        (4, 8, True, 0),
    ],
)
def test_default_workers_leave_the_models_cores_alone(
    monkeypatch, cores: int, torch_threads: int, model_on_cpu: bool, workers: int
) -> None:
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    monkeypatch.setattr(torch, "get_num_threads", lambda: torch_threads)
    assert default_num_workers(model_on_cpu) == workers
    # The data module follows the device of the trainer it is attached to.
    trainer = SimpleNamespace(
        strategy=SimpleNamespace(root_device=torch.device("cpu" if model_on_cpu else "cuda")),
        num_devices=1,
    )
    dm = ImageFolderDataModule("unused", num_workers=None)
    dm.trainer = trainer
    assert dm.loader_workers == workers
    explicit = ImageFolderDataModule("unused", num_workers=3)
    explicit.trainer = trainer
    assert explicit.loader_workers == 3


def test_several_processes_on_a_node_share_its_cores(monkeypatch) -> None:
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(16)), raising=False)
    assert default_num_workers(model_on_cpu=False, processes_on_node=1) == 8
    assert default_num_workers(model_on_cpu=False, processes_on_node=4) == 4
    dm = ImageFolderDataModule("unused", num_workers=None)
    dm.trainer = SimpleNamespace(
        strategy=SimpleNamespace(root_device=torch.device("cuda")), num_devices=4
    )
    assert dm.loader_workers == 4


@pytest.mark.parametrize(
    ("cores", "slurm", "devices", "workers"),
    [
        (8, {"SLURM_CPUS_PER_TASK": "8", "SLURM_NTASKS_PER_NODE": "4"}, 4, 8),  # pinned task
        (8, {"SLURM_CPUS_PER_TASK": "8", "SLURM_TASKS_PER_NODE": "8(x2)"}, 8, 8),
        (6, {"SLURM_CPUS_PER_TASK": "6", "SLURM_NTASKS_PER_NODE": "2"}, 2, 6),
        (32, {"SLURM_CPUS_PER_TASK": "8", "SLURM_NTASKS_PER_NODE": "4"}, 4, 8),  # not pinned
        (16, {"SLURM_CPUS_PER_TASK": "16", "SLURM_NTASKS_PER_NODE": "1"}, 4, 4),  # one task
    ],
)
def test_a_slurm_task_pinned_to_its_cpus_keeps_them(
    monkeypatch, cores: int, slurm: dict[str, str], devices: int, workers: int
) -> None:
    """SLURM binds each task (one per device) to its own CPUs: the affinity is the task's share
    already, not the node's; unbound, the node's cores are shared by its processes."""
    for name in ("SLURM_CPUS_PER_TASK", "SLURM_NTASKS_PER_NODE", "SLURM_TASKS_PER_NODE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in slurm.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: 64)
    assert default_num_workers(model_on_cpu=False, processes_on_node=devices) == workers


@pytest.mark.parametrize("processes", [1, 3])
def test_training_batches_are_never_a_single_image(stripes_root: Path, processes: int) -> None:
    """A batch size that leaves one image over: that image's batch is dropped when each process
    has a full batch, kept when it has not (a tiny data set still trains)."""
    images = len(ready_datamodule(stripes_root).train_samples)
    dm = ready_datamodule(stripes_root, batch_size=images - 1)
    dm.trainer = SimpleNamespace(world_size=processes)
    loader = dm.train_dataloader()
    assert loader.drop_last == (processes == 1)
    if processes == 1:
        assert [len(labels) for _, labels in loader] == [images - 1]
