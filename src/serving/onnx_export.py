"""Export a trained classifier to ONNX (its temperature inside the graph), and prove the file
computes what PyTorch computes."""

from __future__ import annotations

import itertools
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from src.data.dataset import UnlabelledImageFiles
from src.data.transforms import resize_size_for
from src.utils.errors import UserError, one_line
from src.utils.io import write_atomically

log = logging.getLogger(__name__)

#: The graph's input: uint8 RGB images [batch, 3, size, size], resized and center-cropped.
INPUT_NAME = "images"
#: The graph's output: one logit per class, divided by the model's temperature (softmax gives the
#: calibrated probabilities); for a multi-label model, each class's calibrated probability (the
#: sigmoid is in the graph).
OUTPUT_NAME = "logits"
PROBABILITIES_NAME = "probabilities"
#: Largest |ONNX - PyTorch| logit difference accepted, relative to the logits' scale.
TOLERANCE = 1e-3
#: The opset of the TorchScript-based exporter, for models the dynamo exporter cannot take.
TORCHSCRIPT_OPSET = 17


class OnnxParityError(UserError):
    """The exported file does not compute what the PyTorch model computes."""


class CalibratedOutput(nn.Module):
    """The model's logits divided by its `temperature` (one, or one per class), and for a
    multi-label model (`sigmoid`) their probabilities: what the exported graph outputs."""

    def __init__(self, model: nn.Module, temperature: float | list[float], sigmoid: bool) -> None:
        super().__init__()
        self.model = model
        self.sigmoid = sigmoid
        values = temperature if isinstance(temperature, list) else [temperature]
        self.register_buffer("temperature", torch.tensor(values, dtype=torch.float32))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        logits = self.model(images).float() / self.temperature
        return logits.sigmoid() if self.sigmoid else logits


def export_onnx(
    model: nn.Module, image_size: int, path: Path, output_name: str = OUTPUT_NAME
) -> None:
    """Write `model` (uint8 images in, `output_name` out, normalisation inside) to `path` as one
    file, with a dynamic batch size: torch.onnx's exporter (dynamo), or the TorchScript-based
    one for models the former cannot take."""
    model = model.eval()
    example = torch.randint(0, 256, (2, 3, image_size, image_size), dtype=torch.uint8)
    names = {"input_names": [INPUT_NAME], "output_names": [output_name]}
    try:
        batch = torch.export.Dim("batch", min=1)
        torch.onnx.export(
            model,
            (example,),
            str(path),
            dynamo=True,
            external_data=False,
            dynamic_shapes={INPUT_NAME: {0: batch}},
            verbose=False,
            **names,
        )
    except Exception as error:  # an operator the dynamo exporter lacks (timm's MaxViT)
        log.warning("dynamo export failed (%s); using the TorchScript exporter", one_line(error))
        torch.onnx.export(
            model,
            (example,),
            str(path),
            dynamo=False,
            opset_version=TORCHSCRIPT_OPSET,
            dynamic_axes={INPUT_NAME: {0: "batch"}, output_name: {0: "batch"}},
            **names,
        )


def verify_onnx(
    path: Path, model: nn.Module, images: torch.Tensor, output_name: str = OUTPUT_NAME
) -> float:
    """Run `images` (uint8 [N, 3, H, W]) through the file with onnxruntime on the CPU and through
    `model`; returns the largest output difference, or raises `OnnxParityError`."""
    import onnxruntime

    try:
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        exported = session.run([output_name], {INPUT_NAME: images.numpy()})[0]
    except Exception as error:
        raise OnnxParityError(
            f"onnxruntime cannot run {path} ({type(error).__name__}: {one_line(error)[:200]})"
        ) from None
    with torch.inference_mode():
        expected = model.eval()(images).float().numpy()
    difference = float(np.abs(exported - expected).max())
    scale = max(1.0, float(np.abs(expected).max()))
    same_classes = bool((exported.argmax(axis=1) == expected.argmax(axis=1)).all())
    if exported.shape != expected.shape or difference > TOLERANCE * scale or not same_classes:
        raise OnnxParityError(
            f"{path} does not match the PyTorch model on {len(images)} real images (largest "
            f"logit difference {difference:.3g} > {TOLERANCE * scale:.3g}); nothing was written"
        )
    return difference


def serving_metadata(
    class_names: list[str],
    image_size: int,
    crop_pct: float,
    mean: list[float],
    std: list[float],
    thresholds: list[float] | None = None,
    temperature: float | list[float] = 1.0,
) -> dict[str, Any]:
    """What a server needs besides the graph: the classes, how images become its input, the
    temperature the graph applies, and for a multi-label model (`thresholds` given) each class's
    decision threshold."""
    resize = resize_size_for(image_size, crop_pct)
    if thresholds is None:
        output = {
            "name": OUTPUT_NAME,
            "meaning": "logits divided by the temperature; softmax gives the calibrated "
            "probabilities",
        }
        task: dict[str, Any] = {"task": "multiclass"}
    else:
        output = {
            "name": PROBABILITIES_NAME,
            "meaning": "each class's calibrated probability; a class applies at or above its "
            "threshold",
        }
        task = {"task": "multilabel", "thresholds": thresholds}
    return {
        "class_names": class_names,
        "input": {
            "name": INPUT_NAME,
            "dtype": "uint8",
            "layout": "NCHW, RGB",
            "size": [image_size, image_size],
            "crop_pct": crop_pct,
            "resize": f"shorter side to {resize} px (antialiased), "
            f"then the center {image_size}x{image_size} crop",
        },
        "normalisation_in_graph": True,
        "mean": mean,
        "std": std,
        "output": output,
        "temperature_in_graph": True,
        "temperature": temperature,
        **task,
    }


def export_verified(
    model: nn.Module,
    metadata: dict[str, Any],
    images: torch.Tensor,
    onnx_path: Path,
) -> float:
    """Export, check parity on `images`, and only then put `onnx_path` and its `.json` in place
    (a failed export leaves no file that looks valid). Returns the largest logit difference."""
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    temporary = onnx_path.with_name(f".{onnx_path.name}.{os.getpid()}.tmp.onnx")
    output_name = metadata.get("output", {}).get("name", OUTPUT_NAME)
    model = CalibratedOutput(
        model, metadata.get("temperature", 1.0), sigmoid=output_name == PROBABILITIES_NAME
    )
    try:
        export_onnx(model, metadata["input"]["size"][0], temporary, output_name)
        difference = verify_onnx(temporary, model, images, output_name)
        os.replace(temporary, onnx_path)
    finally:
        temporary.unlink(missing_ok=True)
    metadata = {**metadata, "parity": {"images": len(images), "max_logit_difference": difference}}
    write_atomically(onnx_path.with_suffix(".json"), json.dumps(metadata, indent=2))
    return difference


def parity_images(
    files: list[Path], image_size: int, crop_pct: float, max_pixels: int, count: int
) -> torch.Tensor:
    """The first `count` usable `files` as the model sees them (uint8, resized and cropped)."""
    dataset = UnlabelledImageFiles(files, image_size, crop_pct, max_pixels)
    read = (dataset[index][1] for index in range(len(dataset)))
    images = list(itertools.islice((image for image in read if image is not None), count))
    if not images:
        raise UserError("no usable image to check the export with; pass images=path/to/images")
    return torch.stack(images)
