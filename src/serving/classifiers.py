"""Models ready for inference, behind one interface: a checkpoint run by PyTorch, or an exported
ONNX file run by onnxruntime (no Lightning, no checkpoint)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import torch

from src.data.transforms import DEFAULT_CROP_PCT
from src.models.calibration import temperature_value
from src.models.tasks import MULTILABEL
from src.serving.onnx_export import INPUT_NAME, OUTPUT_NAME, PROBABILITIES_NAME
from src.utils.errors import UserError

if TYPE_CHECKING:
    from src.models.classifier import ImageClassifier


class Classifier(Protocol):
    """uint8 image batches [B, 3, S, S] (resized to S / crop_pct and center-cropped) in,
    calibrated probabilities [B, C] out."""

    class_names: list[str]
    image_size: int
    crop_pct: float
    device: torch.device
    #: Each class's decision threshold for a multi-label model; None for one class per image.
    thresholds: list[float] | None
    #: The temperature its probabilities are at (a list, one per class, for a multi-label model).
    temperature: float | list[float]

    def probabilities(self, images: torch.Tensor) -> torch.Tensor: ...


class CheckpointClassifier:
    """A checkpoint of this project on `device` (the GPU when there is one, for `auto`), in
    float32 as `evaluate` scores it, so the probabilities written are those of its report;
    `trained_on` keeps the checkpoint's data settings."""

    def __init__(self, ckpt_path: str | Path, device: str = "auto") -> None:
        from src.models.checkpoint import load_checkpoint  # Lightning only on this path

        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.wrap(*load_checkpoint(ckpt_path, map_location=device))

    @classmethod
    def of(cls, model: ImageClassifier, trained_on: dict[str, Any] | None) -> CheckpointClassifier:
        """A model already loaded (`load_checkpoint`), as a classifier."""
        classifier = cls.__new__(cls)
        classifier.wrap(model, trained_on)
        return classifier

    def wrap(self, model: ImageClassifier, trained_on: dict[str, Any] | None) -> None:
        self.model, self.trained_on = model, trained_on
        self.class_names = list(model.class_names)
        self.image_size = int(model.hparams.image_size)
        self.crop_pct = float(model.hparams.crop_pct)
        self.device = model.device
        multi_label = model.task == MULTILABEL
        self.thresholds = model.thresholds.tolist() if multi_label else None
        self.temperature = temperature_value(model.temperature, model.task)

    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            logits = self.model(images.to(self.model.device, non_blocking=True))
        return self.model.probabilities_of(logits).cpu()


class OnnxClassifier:
    """An ONNX file written by `python -m src.export`, with the `.json` beside it."""

    def __init__(self, model_file: str | Path) -> None:
        import onnxruntime

        path = Path(model_file)
        metadata_file = path.with_suffix(".json")
        if not path.is_file() or not metadata_file.is_file():
            raise UserError(
                f"model_file={path} needs the .onnx file and its {metadata_file.name} beside it, "
                "as python -m src.export writes them"
            )
        metadata = json.loads(metadata_file.read_text(encoding="utf-8"))
        self.class_names = list(metadata["class_names"])
        self.image_size = int(metadata["input"]["size"][0])
        self.crop_pct = float(metadata["input"].get("crop_pct", DEFAULT_CROP_PCT))
        self.device = torch.device("cpu")
        self.thresholds = metadata.get("thresholds")
        self.temperature = metadata.get("temperature", 1.0)
        #: The validation split's answers that a target precision is chosen on (see export).
        self.validation = metadata.get("validation")
        self.output_name = metadata.get("output", {}).get("name", OUTPUT_NAME)
        self.session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        outputs = self.session.run([self.output_name], {INPUT_NAME: images.numpy()})[0]
        outputs = torch.from_numpy(outputs).float()
        # A multi-label graph outputs probabilities; a single-label one, logits (both at the
        # temperature, which is in the graph).
        return outputs if self.output_name == PROBABILITIES_NAME else outputs.softmax(dim=1)
