"""Match the classes of a labelled folder to a model's, by name."""

from __future__ import annotations

from src.utils.errors import UserError


def label_mapping(data_classes: list[str], model_classes: list[str], subset: bool) -> list[int]:
    """For each class of the data (in its label order), the model's index of that class.

    Every data class must be one the model knows; with `subset`, the data may lack some of the
    model's classes (it is then scored on the ones it has), otherwise it must have them all.
    """
    unknown = [name for name in data_classes if name not in model_classes]
    missing = [name for name in model_classes if name not in data_classes]
    if unknown or (missing and not subset):
        hint = (
            "; or class_subset=true to score a folder that holds only some of them"
            if missing and not unknown
            else ""
        )
        raise UserError(
            f"the data's class folders {data_classes} do not match the checkpoint's classes "
            f"{model_classes}: name each class folder after one of the checkpoint's classes{hint}"
        )
    return [model_classes.index(name) for name in data_classes]
