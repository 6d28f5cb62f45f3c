"""Label files (`data=csv`): every row that cannot be used is left out with its reason, a file
that is not a table stops at once naming the line; paths, separators and a split column."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from src.data.sources.csv import CsvDataModule, CsvFormatError
from src.train import train
from src.utils.errors import UserError
from tests.helpers import TINY, run_module
from tests.helpers.image_factory import write_broken_files, write_rgb_jpeg

COLORS = {"cat": (200, 40, 40), "dog": (40, 40, 200)}


def photos(folder: Path, per_class: int = 4) -> list[str]:
    """`per_class` photos of each class under `folder/img`, as relative paths."""
    names = []
    for label, color in COLORS.items():
        for index in range(per_class):
            name = f"img/{label}{index}.jpg"
            write_rgb_jpeg(folder / name, color=color)
            names.append(name)
    return names


def datamodule(csv_file: Path, **settings) -> CsvDataModule:
    dm = CsvDataModule(str(csv_file), image_size=32, batch_size=4, num_workers=0, **settings)
    dm.prepare_data()
    dm.setup("fit")
    return dm


def good_rows(folder: Path) -> list[str]:
    return [f"{name},{name.split('/')[1][:3]}" for name in photos(folder)]


def test_every_row_that_cannot_be_used_is_listed_with_its_reason(tmp_path: Path) -> None:
    rows = good_rows(tmp_path)
    broken = write_broken_files(tmp_path / "img" / "broken")
    rows += [
        "img/missing.jpg,cat",  # line 10: missing file
        "img/cat0.jpg,dog",  # line 11: the same path with another label
        "img/dog1.jpg,dog",  # line 12: the same path with the same label
        ",cat",  # line 13: empty path
        "img/cat1.jpg",  # line 14: too few columns
        "img/dog2.jpg,   ",  # line 15: empty label
        "img/broken/zero_bytes.jpg,cat",  # line 16: an unreadable image
        f"{(tmp_path / 'img' / 'dog3.jpg').resolve()},dog",  # absolute, same file as line 9
    ]
    assert broken["zero_bytes.jpg"] == "zero-byte"
    csv_file = tmp_path / "labels.csv"
    csv_file.write_text("path,label\n" + "\n".join(rows) + "\n", encoding="utf-8")
    dm = datamodule(csv_file, file_list_dir=str(tmp_path / "run"))
    reasons = dm.excluded
    assert reasons["img/missing.jpg (labels.csv line 10)"] == "missing file"
    assert reasons["img/cat0.jpg"] == (
        "the same path twice with different labels (lines 2 and 11: cat / dog)"
    )
    assert reasons["labels.csv line 12"] == "the same path as line 7"
    assert reasons["labels.csv line 13"] == "empty path"
    assert reasons["labels.csv line 14"] == "too few columns (1 of 2 configured)"
    assert reasons["img/dog2.jpg (labels.csv line 15)"] == "empty label"
    assert reasons["img/broken/zero_bytes.jpg"] == "zero-byte file"
    assert reasons["labels.csv line 17"] == "the same path as line 9"
    # the rows that are left: 8 photos less cat0 (ambiguous)
    kept = {sample.path.name for sample in dm.train_samples + dm.val_samples}
    assert kept == {f"{c}{i}.jpg" for c in COLORS for i in range(4)} - {"cat0.jpg"}
    listed = (tmp_path / "run" / "excluded_files.txt").read_text(encoding="utf-8").splitlines()
    assert len(listed) == len(reasons) == 8


def test_a_label_seen_only_in_validation_is_left_out(tmp_path: Path) -> None:
    write_rgb_jpeg(tmp_path / "img" / "bird.jpg")
    rows = [*good_rows(tmp_path), "img/bird.jpg,bird"]
    sides = ["train"] * 8 + ["val"]
    csv_file = tmp_path / "labels.csv"
    lines = [f"{row},{side}" for row, side in zip(rows, sides, strict=True)]
    csv_file.write_text("path,label,split\n" + "\n".join(lines) + "\n", encoding="utf-8")
    dm = datamodule(csv_file, split_column="split")
    assert dm.excluded == {"img/bird.jpg": "label seen only in validation (bird)"}
    assert (len(dm.train_samples), len(dm.val_samples)) == (8, 0)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            'path,label\nimg/cat0.jpg,"cat\n',
            r"line 2: not a valid CSV row \(unexpected end of data\)",
        ),
        ('path,label\nimg/cat0.jpg,"ca"t\n', r"line 2: not a valid CSV row"),
        (
            "img/cat0.jpg,cat\nimg/dog0.jpg,dog\n",
            r"line 1: the first row holds data, not column names",
        ),
        (
            "file,class\nimg/cat0.jpg,cat\n",
            r"line 1: no column 'path' \(columns: file, class\); set data.path_column",
        ),
        ("", r"line 1: the file is empty; it needs a header row"),
    ],
    ids=["unterminated quote", "bad quoting", "no header", "column missing", "empty"],
)
def test_a_file_that_is_not_a_table_stops_naming_the_line(
    content: str, message: str, tmp_path: Path
) -> None:
    photos(tmp_path)
    csv_file = tmp_path / "labels.csv"
    csv_file.write_text(content, encoding="utf-8")
    with pytest.raises(CsvFormatError, match=rf"data.csv={csv_file}, {message}"):
        datamodule(csv_file)


def test_a_split_column_is_used_and_a_bad_side_is_listed(tmp_path: Path) -> None:
    names = photos(tmp_path)
    sides = ["train", "Train", "val", "VALIDATION", "train", "training", "valid", "test"]
    lines = [
        f"{name},{name.split('/')[1][:3]},{side}" for name, side in zip(names, sides, strict=True)
    ]
    csv_file = tmp_path / "labels.csv"
    csv_file.write_text("path,label,fold\n" + "\n".join(lines) + "\n", encoding="utf-8")
    dm = datamodule(csv_file, split_column="fold")
    val = sorted(sample.path.name for sample in dm.val_samples)
    assert val == ["cat2.jpg", "cat3.jpg", "dog2.jpg"]
    assert dm.excluded == {
        "img/dog3.jpg (labels.csv line 9)": "split 'test' is neither train nor val"
    }


def test_several_labels_need_a_multi_label_task(tmp_path: Path) -> None:
    names = photos(tmp_path)
    lines = [
        f"{name},{'cat;dog' if index == 0 else name.split('/')[1][:3]}"
        for index, name in enumerate(names)
    ]
    csv_file = tmp_path / "labels.csv"
    csv_file.write_text("path,label\n" + "\n".join(lines) + "\n", encoding="utf-8")
    single = datamodule(csv_file, label_separator=";")
    reason = "several labels (cat, dog) for a single-label task (task=multilabel takes them)"
    assert single.excluded == {"img/cat0.jpg": reason}
    multi = datamodule(csv_file, label_separator=";", multi_label=True)
    both = next(s for s in multi.train_samples + multi.val_samples if s.path.name == "cat0.jpg")
    assert both.labels == (0, 1) and not multi.excluded
    assert multi.targets([both]).tolist() == [[1.0, 1.0]]


def test_paths_are_relative_to_the_files_folder_or_the_root(tmp_path: Path) -> None:
    photos(tmp_path / "pictures")
    rows = [f"{name},{name.split('/')[1][:3]}" for name in photos(tmp_path / "pictures")]
    csv_file = tmp_path / "meta" / "labels.csv"
    csv_file.parent.mkdir()
    csv_file.write_text("path,label\n" + "\n".join(rows) + "\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"No usable image in .*meta: 8 left out, e\.g\. img/cat0"):
        datamodule(csv_file)  # relative to meta/: every file missing
    dm = datamodule(csv_file, root=str(tmp_path / "pictures"))
    assert len(dm.samples) == 8 and dm.root == tmp_path / "pictures"


@pytest.mark.slow
def test_a_run_on_a_label_file_lists_what_it_left_out(make_config, tmp_path: Path) -> None:
    rows = [*good_rows(tmp_path / "data"), "img/nowhere.jpg,cat"]
    csv_file = tmp_path / "data" / "labels.csv"
    csv_file.write_text("path,label\n" + "\n".join(rows) + "\n", encoding="utf-8")
    cfg = make_config(["data=csv", f"data.csv={csv_file}", *TINY])
    assert train(cfg) is not None
    run = Path(cfg.paths.output_dir)
    assert (run / "excluded_files.txt").read_text() == (
        "img/nowhere.jpg (labels.csv line 10)\tmissing file\n"
    )
    listed = (run / "train_files.txt").read_text().splitlines()
    assert listed and all(line.startswith("img/") for line in listed)


@pytest.mark.slow
def test_a_label_file_run_evaluates_exports_and_predicts_through_the_command_line(
    tmp_path: Path,
) -> None:
    """The non-folder source end to end, as a user types it: train on one label file, evaluate
    on its validation split and on another label file of unseen images, export (checked on the
    label file's images), predict with the exported file."""
    csv_file = tmp_path / "data" / "labels.csv"
    csv_file.parent.mkdir()
    csv_file.write_text("path,label\n" + "\n".join(good_rows(tmp_path / "data")) + "\n")
    trained = run_module(
        "src.train", "data=csv", f"data.csv={csv_file}", *TINY, "hydra.run.dir=train",
        cwd=tmp_path,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr[-3000:]
    best = "ckpt_path=train/checkpoints/best.ckpt"
    on_split = run_module("src.evaluate", best, "hydra.run.dir=eval_split", cwd=tmp_path)
    assert on_split.returncode == 0, on_split.stderr[-3000:]
    split = json.loads((tmp_path / "eval_split" / "metrics.json").read_text())
    val_files = (tmp_path / "train" / "val_files.txt").read_text().splitlines()
    assert split["num_images"] == len(val_files)

    unseen = tmp_path / "unseen" / "labels.csv"
    unseen.parent.mkdir()
    rows = [f"{name},{name.split('/')[1][:3]}" for name in photos(tmp_path / "unseen", 3)]
    unseen.write_text("path,label\n" + "\n".join(rows) + "\n")
    on_file = run_module(
        "src.evaluate", best, f"data.csv={unseen}", "hydra.run.dir=eval_file", cwd=tmp_path
    )
    assert on_file.returncode == 0, on_file.stderr[-3000:]
    assert json.loads((tmp_path / "eval_file" / "metrics.json").read_text())["num_images"] == 6

    exported = run_module("src.export", best, "output=export/model.onnx", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr[-3000:]
    predicted = run_module(
        "src.predict", "model_file=export/model.onnx", f"input={tmp_path / 'unseen' / 'img'}",
        "hydra.run.dir=predict", cwd=tmp_path,
    )  # fmt: skip
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    rows = (tmp_path / "predict" / "predictions.csv").read_text().splitlines()
    assert len(rows) == 1 + 6
