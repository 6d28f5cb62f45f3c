"""Read a checkpoint of this project: the trained classifier, and the data it was trained on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from src.models.classifier import ImageClassifier
from src.utils.errors import UserError
from src.utils.io import atomic_output

#: What a calibration changes in a checkpoint's weights.
CALIBRATED = ("temperature", "thresholds")


def load_checkpoint(
    ckpt_path: str | Path, map_location: str | torch.device = "cpu"
) -> tuple[ImageClassifier, dict[str, Any] | None]:
    """The model stored in `ckpt_path`, in eval mode on `map_location`, and the settings of the
    data module it was trained with (None when the checkpoint has none).

    The file is read with `weights_only=True`: a pickle that would run code is refused.
    """
    path = Path(ckpt_path)
    if not path.is_file():
        raise UserError(
            f"ckpt_path={path} does not exist; pass a .ckpt file from <run dir>/checkpoints/"
        )
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
        hparams = dict(checkpoint["hyper_parameters"])
        # Checkpoints of earlier versions kept the data settings with the model's.
        data = checkpoint.get("datamodule_hyper_parameters") or hparams.pop("data_config", None)
        hparams.pop("data_config", None)
        model = ImageClassifier(**hparams)
        model.on_load_checkpoint(checkpoint)
        model.load_state_dict(checkpoint["state_dict"])
    except Exception as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise UserError(
            f"ckpt_path={path} is not a loadable checkpoint of this project "
            f"({type(error).__name__}: {first_line[:200]})"
        ) from error
    return model.to(map_location).eval(), None if data is None else dict(data)


def load_classifier(
    ckpt_path: str | Path, map_location: str | torch.device = "cpu"
) -> ImageClassifier:
    """The model stored in `ckpt_path`, in eval mode (see `load_checkpoint`)."""
    return load_checkpoint(ckpt_path, map_location)[0]


def training_state(ckpt_path: str | Path) -> dict[str, Any]:
    """The checkpoint's epoch and global step, and whether its weights are an average (EMA)."""
    checkpoint = torch.load(ckpt_path, map_location="cpu", weights_only=True, mmap=True)
    return {
        "epoch": checkpoint.get("epoch"),
        "global_step": checkpoint.get("global_step"),
        "weight_averaging": "averaging_state" in checkpoint,
    }


def save_calibrated(source: str | Path, model: ImageClassifier, destination: str | Path) -> Path:
    """Write the checkpoint `source` to `destination` (atomically; the same path rewrites it)
    with `model`'s temperature, and thresholds for a multi-label model, in place of its own:
    everything else (weights, optimizer state, data settings) is kept as it was."""
    checkpoint = torch.load(source, map_location="cpu", weights_only=True)
    state = model.state_dict()
    for key in ("state_dict", "current_model_state"):  # the latter: EMA's current weights
        for name in CALIBRATED:
            if name in state and isinstance(checkpoint.get(key), dict):
                checkpoint[key][name] = state[name].detach().cpu().clone()
    with atomic_output(destination) as handle:
        torch.save(checkpoint, handle)
    return Path(destination)
