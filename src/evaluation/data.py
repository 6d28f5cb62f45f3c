"""Which images an evaluation scores: the checkpoint's validation split, or a labelled folder."""

from __future__ import annotations

import inspect
from typing import Any

from src.data.datamodule import ImageFolderDataModule
from src.utils.errors import UserError

BASE_DATA_MODULE = f"{ImageFolderDataModule.__module__}.{ImageFolderDataModule.__qualname__}"


def evaluation_data_settings(
    chosen: dict[str, Any], trained_on: dict[str, Any] | None, split: bool
) -> dict[str, Any]:
    """The data module's settings for an evaluation.

    - `chosen` is a whole data option (`data=folder data.root=...`): that data set;
    - `chosen` names only a folder (`data.root=...`): that folder, read with the settings the
      checkpoint was trained with;
    - neither: the data the checkpoint was trained on, and its validation split.
    A chosen folder is scored whole (`evaluate_all`) unless `split` asks for its validation split.
    """
    if chosen.get("_target_"):
        return {**chosen, "evaluate_all": not split}
    if trained_on is None:
        raise UserError(
            "this checkpoint records no data settings; choose the data with "
            "data=folder data.root=path/to/labelled/images"
        )
    if not chosen.get("root"):
        return {**trained_on, "evaluate_all": False}
    # Another folder: the plain folder data module (a source such as cats_dogs would fetch its
    # own data), with the trained-on reading settings.
    accepted = inspect.signature(ImageFolderDataModule.__init__).parameters
    settings = {key: value for key, value in trained_on.items() if key in accepted}
    return {**settings, **chosen, "_target_": BASE_DATA_MODULE, "evaluate_all": not split}
