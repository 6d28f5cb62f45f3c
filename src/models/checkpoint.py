"""Load a trained classifier from a checkpoint of this project, refusing anything unsafe."""

from __future__ import annotations

from pathlib import Path

import torch

from src.models.classifier import ImageClassifier
from src.utils.errors import UserError


def load_classifier(
    ckpt_path: str | Path, map_location: str | torch.device = "cpu"
) -> ImageClassifier:
    """The model stored in `ckpt_path`, in eval mode.

    The file is read with `weights_only=True`: a pickle that would run code is refused.
    """
    path = Path(ckpt_path)
    if not path.is_file():
        raise UserError(
            f"ckpt_path={path} does not exist; pass a .ckpt file from <run dir>/checkpoints/"
        )
    try:
        model = ImageClassifier.load_from_checkpoint(
            path, map_location=map_location, weights_only=True
        )
    except Exception as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise UserError(
            f"ckpt_path={path} is not a loadable checkpoint of this project "
            f"({type(error).__name__}: {first_line[:200]})"
        ) from error
    return model.eval()
