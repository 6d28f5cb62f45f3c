"""Which data an evaluation reads: the checkpoint's split, a folder, or a whole data option."""

from __future__ import annotations

import pytest

from src.evaluation.data import evaluation_data_settings
from src.utils.errors import UserError

FOLDER = "src.data.sources.folder.ImageFolderDataModule"
CSV = "src.data.sources.csv.CsvDataModule"
TRAINED_ON = {
    "_target_": "src.data.sources.cats_dogs.CatsDogsDataModule",
    "root": "data/cats_dogs/PetImages",
    "url": "https://example.invalid/archive.zip",
    "archive": None,
    "max_pixels": 1000,
    "batch_size": 8,
    "val_fraction": 0.2,
    "split_seed": 3,
}


def test_without_data_settings_the_checkpoints_split_is_scored() -> None:
    settings = evaluation_data_settings({"root": None}, TRAINED_ON, split=False)
    assert settings == {**TRAINED_ON, "evaluate_all": False}


def test_a_folder_is_read_with_the_trained_settings_by_the_plain_folder_module() -> None:
    settings = evaluation_data_settings({"root": "test"}, TRAINED_ON, split=False)
    # Not the Cats vs Dogs source: it would download its own data instead of reading `test`.
    assert settings["_target_"] == FOLDER
    assert "url" not in settings and "archive" not in settings
    assert (settings["root"], settings["max_pixels"], settings["batch_size"]) == ("test", 1000, 8)
    assert settings["evaluate_all"] is True
    split = evaluation_data_settings({"root": "test"}, TRAINED_ON, split=True)
    assert split["evaluate_all"] is False


def test_a_whole_data_option_is_taken_as_given() -> None:
    chosen = {"_target_": FOLDER, "root": "test", "batch_size": 2}
    assert evaluation_data_settings(chosen, TRAINED_ON, split=False) == {
        **chosen,
        "evaluate_all": True,
    }


def test_a_checkpoint_without_data_settings_needs_them_given() -> None:
    with pytest.raises(UserError, match=r"data=folder data\.root="):
        evaluation_data_settings({"root": None}, None, split=False)


def test_a_label_file_is_read_with_the_trained_settings_by_the_csv_module() -> None:
    trained = {**TRAINED_ON, "_target_": CSV, "csv": "train.csv", "label_separator": ";"}
    settings = evaluation_data_settings({"csv": "test/labels.csv"}, trained, split=False)
    assert settings["_target_"] == CSV and settings["csv"] == "test/labels.csv"
    assert settings["label_separator"] == ";" and "root" not in settings  # the new file's folder
    assert settings["evaluate_all"] is True


def test_checkpoints_of_the_folder_module_before_sources_had_modules_still_evaluate() -> None:
    old = {**TRAINED_ON, "_target_": "src.data.datamodule.ImageFolderDataModule"}
    assert evaluation_data_settings({}, old, split=False)["_target_"] == FOLDER
