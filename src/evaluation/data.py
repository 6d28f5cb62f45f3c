"""Which images an evaluation scores: the checkpoint's validation split, or a labelled test set
(a folder, or a label file)."""

from __future__ import annotations

import inspect
from typing import Any

from src.data.datamodule import ImageDataModule
from src.data.sources.csv import CsvDataModule
from src.data.sources.folder import ImageFolderDataModule
from src.utils.errors import UserError


def class_path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


#: Data modules of checkpoints made before the data sources had modules of their own.
MOVED = {"src.data.datamodule.ImageFolderDataModule": class_path(ImageFolderDataModule)}
#: The setting that names a test set of each kind, and the data module that reads it.
TEST_SETS = {"csv": CsvDataModule, "root": ImageFolderDataModule}


def evaluation_data_settings(
    chosen: dict[str, Any], trained_on: dict[str, Any] | None, split: bool
) -> dict[str, Any]:
    """The data module's settings for an evaluation.

    - `chosen` is a whole data option (`data=folder data.root=...`, `data=csv data.csv=...`):
      that data set;
    - `chosen` names only a label file (`data.csv=...`) or a folder (`data.root=...`): that test
      set, read with the settings the checkpoint was trained with;
    - neither: the data the checkpoint was trained on, and its validation split.
    A chosen test set is scored whole (`evaluate_all`) unless `split` asks for its validation
    split.
    """
    chosen = {key: value for key, value in chosen.items() if value is not None}
    if chosen.get("_target_"):
        return {**chosen, "evaluate_all": not split}
    if trained_on is None:
        raise UserError(
            "this checkpoint records no data settings; choose the data with "
            "data=folder data.root=path/to/labelled/images"
        )
    target = trained_on["_target_"]
    trained_on = {**trained_on, "_target_": MOVED.get(target, target)}
    kind = next((key for key in TEST_SETS if chosen.get(key)), None)
    if kind is None:
        return {**trained_on, "evaluate_all": False}
    # Another test set: the plain folder or label-file data module (a source such as
    # cats_dogs would fetch its own data), with the trained-on reading settings.
    module = TEST_SETS[kind]
    accepted = {
        *inspect.signature(ImageDataModule.__init__).parameters,
        *inspect.signature(module.__init__).parameters,
    }
    settings = {key: value for key, value in trained_on.items() if key in accepted}
    if kind == "csv":
        settings.pop("root", None)  # the images are under the new label file's folder
    return {**settings, **chosen, "_target_": class_path(module), "evaluate_all": not split}
