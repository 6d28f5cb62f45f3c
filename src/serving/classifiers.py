"""Models ready for inference, behind one interface: a checkpoint run by PyTorch, or an exported
ONNX file run by onnxruntime (no Lightning, no checkpoint)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Protocol

import torch

from src.data.transforms import DEFAULT_CROP_PCT
from src.models.tasks import MULTILABEL, probabilities
from src.serving.onnx_export import INPUT_NAME, OUTPUT_NAME, PROBABILITIES_NAME
from src.utils.errors import UserError


class Classifier(Protocol):
    """uint8 image batches [B, 3, S, S] (resized to S / crop_pct and center-cropped) in,
    probabilities [B, C] out."""

    class_names: list[str]
    image_size: int
    crop_pct: float
    device: torch.device
    #: Each class's decision threshold for a multi-label model; None for one class per image.
    thresholds: list[float] | None

    def probabilities(self, images: torch.Tensor) -> torch.Tensor: ...


class CheckpointClassifier:
    """A checkpoint of this project on `device` (the GPU when there is one, for `auto`), in
    float32 as `evaluate` scores it: the probabilities written are those of its report."""

    def __init__(self, ckpt_path: str | Path, device: str = "auto") -> None:
        from src.models.checkpoint import load_classifier  # Lightning only on this path

        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model = load_classifier(ckpt_path, map_location=device)
        self.class_names = list(self.model.class_names)
        self.image_size = int(self.model.hparams.image_size)
        self.crop_pct = float(self.model.hparams.crop_pct)
        self.device = self.model.device
        multi_label = self.model.task == MULTILABEL
        self.thresholds = self.model.thresholds.tolist() if multi_label else None

    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            logits = self.model(images.to(self.model.device, non_blocking=True))
        return probabilities(logits, self.model.task).cpu()


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
        self.output_name = metadata.get("output", {}).get("name", OUTPUT_NAME)
        self.session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        outputs = self.session.run([self.output_name], {INPUT_NAME: images.numpy()})[0]
        outputs = torch.from_numpy(outputs).float()
        # A multi-label graph outputs probabilities; a single-label one, logits.
        return outputs if self.output_name == PROBABILITIES_NAME else outputs.softmax(dim=1)
