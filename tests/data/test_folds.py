"""k-fold cross-validation (`data.folds=K data.fold=i`): the folds partition the data, are
stratified (also with several labels per image), seeded, keep a group's images together; fold i
validates; a label file can give its own folds."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest

from src.data.samples import Sample
from src.data.sources.csv import CsvDataModule
from src.data.sources.folder import ImageFolderDataModule
from src.data.split import assign_folds
from src.utils.errors import UserError
from tests.helpers.image_factory import write_class_folders, write_rgb_jpeg


def imbalanced(count: int = 103, seed: int = 0) -> list[Sample]:
    rng = random.Random(seed)
    return [Sample(Path(f"/d/{i}.jpg"), int(rng.random() < 0.2)) for i in range(count)]


def test_folds_partition_the_data_and_are_stratified_and_seeded() -> None:
    samples = imbalanced()
    folds = assign_folds(samples, 5, seed=7)
    assert set(folds) == {s.path for s in samples} and set(folds.values()) == set(range(5))
    sizes = Counter(folds.values())
    assert max(sizes.values()) - min(sizes.values()) <= 1
    for label in (0, 1):
        per_fold = Counter(folds[s.path] for s in samples if s.label == label)
        assert max(per_fold.values()) - min(per_fold.values()) <= 1, label
    assert assign_folds(samples, 5, seed=7) == folds
    assert assign_folds(samples, 5, seed=8) != folds


def test_several_labels_per_image_are_balanced_across_the_folds() -> None:
    rng = random.Random(1)
    samples = [
        Sample(Path(f"/m/{i}.jpg"), tuple(sorted(rng.sample(range(4), rng.randint(1, 3)))))
        for i in range(200)
    ]
    folds = assign_folds(samples, 5, seed=0)
    for label in range(4):
        per_fold = Counter(folds[s.path] for s in samples if label in s.labels)
        total = sum(per_fold.values())
        assert max(abs(n - total / 5) for n in per_fold.values()) <= 2, (label, per_fold)


def test_a_groups_images_stay_in_one_fold() -> None:
    samples = imbalanced(120)
    groups = {sample.path: f"animal {index // 4}" for index, sample in enumerate(samples)}
    folds = assign_folds(samples, 4, seed=0, groups=groups)
    for group in set(groups.values()):
        assert len({folds[path] for path, g in groups.items() if g == group}) == 1
    assert max(Counter(folds.values()).values()) - min(Counter(folds.values()).values()) <= 4


def test_each_fold_validates_once_and_trains_the_rest(tmp_path: Path) -> None:
    root = write_class_folders(tmp_path / "images", {"a": 12, "b": 8})
    vals = []
    for fold in range(4):
        dm = ImageFolderDataModule(str(root), image_size=32, num_workers=0, folds=4, fold=fold)
        dm.prepare_data()
        dm.setup("fit")
        train, val = {s.path for s in dm.train_samples}, {s.path for s in dm.val_samples}
        assert not train & val and len(train | val) == 20
        assert Counter(s.label for s in dm.val_samples) == {0: 3, 1: 2}
        vals.append(val)
    assert set.union(*vals) == {p for p in root.rglob("*.jpg")}
    assert sum(len(v) for v in vals) == 20


def test_a_label_files_fold_and_group_columns(tmp_path: Path) -> None:
    rows = []
    for index in range(12):
        name = f"img/{index}.jpg"
        write_rgb_jpeg(tmp_path / name, color=(40 * (index % 2), 90, 9))
        rows.append(f"{name},{'ab'[index % 2]},{index % 3},subject{index // 4}")
    csv_file = tmp_path / "labels.csv"
    csv_file.write_text("path,label,fold,subject\n" + "\n".join(rows) + "\n")
    common = {"image_size": 32, "num_workers": 0}
    given = CsvDataModule(str(csv_file), fold_column="fold", fold=1, **common)
    given.prepare_data()
    given.setup("fit")
    assert sorted(int(s.path.stem) for s in given.val_samples) == [1, 4, 7, 10]
    grouped = CsvDataModule(str(csv_file), group_column="subject", folds=3, fold=0, **common)
    grouped.prepare_data()
    grouped.setup("fit")
    subjects = {int(s.path.stem) // 4 for s in grouped.val_samples}
    assert len(subjects) == 1 and len(grouped.val_samples) == 4


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"folds": 5, "fold": 5}, r"data.fold=5 with data.folds=5: folds count from 0"),
        ({"folds": 1}, r"data.folds=1 must be"),
    ],
)
def test_a_fold_that_cannot_be_is_refused(settings, message: str, tmp_path: Path) -> None:
    with pytest.raises(UserError, match=message):
        ImageFolderDataModule(str(tmp_path), image_size=32, **settings)


def test_folds_and_a_given_split_are_refused_together(tmp_path: Path) -> None:
    write_class_folders(tmp_path / "images" / "train", {"a": 3, "b": 3})
    write_class_folders(tmp_path / "images" / "val", {"a": 1, "b": 1})
    dm = ImageFolderDataModule(str(tmp_path / "images"), image_size=32, folds=3)
    with pytest.raises(UserError, match=r"data.folds with a split the data gives"):
        dm.prepare_data()
