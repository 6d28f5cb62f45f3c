"""The ONNX export is trusted only after onnxruntime reproduces PyTorch's logits on real images."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
import torch
from onnx import numpy_helper

import src.serving.onnx_export as onnx_export
from src.models.calibration import temperature_value
from src.models.tasks import MULTICLASS, MULTILABEL, probabilities
from src.serving.classifiers import CheckpointClassifier, OnnxClassifier
from src.serving.onnx_export import (
    OnnxParityError,
    export_verified,
    serving_metadata,
    verify_onnx,
)
from tests.helpers import build_classifier

SIZE = 32


@pytest.fixture(scope="module")
def model():
    return build_classifier(image_size=SIZE, seed=0).eval()


def images(count: int = 4) -> torch.Tensor:
    generator = torch.Generator().manual_seed(1)
    return torch.randint(0, 256, (count, 3, SIZE, SIZE), dtype=torch.uint8, generator=generator)


def corrupt_weights(path: Path) -> None:
    """Scale the head's weights in the file, as a damaged copy or a wrong export would."""
    graph = onnx.load(str(path))
    for initializer in graph.graph.initializer:
        values = numpy_helper.to_array(initializer)
        if values.ndim == 2:  # the Linear head
            initializer.CopyFrom(numpy_helper.from_array(values * 3.0 + 1.0, initializer.name))
    onnx.save(graph, str(path))


def test_export_matches_pytorch_at_any_batch_size(model, tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    difference = export_verified(model, {"input": {"size": [SIZE, SIZE]}}, images(), path)
    assert path.is_file() and path.with_suffix(".json").is_file()
    assert difference < 1e-3
    assert verify_onnx(path, model, images(7)) < 1e-3  # another batch size than exported with


def test_a_corrupted_model_file_fails_the_check(model, tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    export_verified(model, {"input": {"size": [SIZE, SIZE]}}, images(), path)
    corrupt_weights(path)
    with pytest.raises(OnnxParityError, match="does not match the PyTorch model"):
        verify_onnx(path, model, images())
    path.write_bytes(path.read_bytes()[:1000])  # truncated
    with pytest.raises(OnnxParityError, match="onnxruntime cannot run"):
        verify_onnx(path, model, images())


def test_a_failed_check_leaves_no_file_that_looks_valid(model, tmp_path: Path, monkeypatch) -> None:
    export = onnx_export.export_onnx

    def export_then_damage(model, image_size, path, *output_name):
        export(model, image_size, path, *output_name)
        corrupt_weights(path)

    monkeypatch.setattr(onnx_export, "export_onnx", export_then_damage)
    path = tmp_path / "model.onnx"
    with pytest.raises(OnnxParityError):
        export_verified(model, {"input": {"size": [SIZE, SIZE]}}, images(), path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("multi_label", [False, True])
def test_onnx_and_checkpoint_give_the_same_calibrated_probabilities(
    tmp_path: Path, multi_label: bool
) -> None:
    task = MULTILABEL if multi_label else MULTICLASS
    calibrated = build_classifier(image_size=SIZE, seed=0, task=task).eval()
    temperature = torch.tensor([2.5, 0.5] if multi_label else [2.5])
    calibrated.set_temperature(temperature)
    settings = calibrated.hparams
    metadata = serving_metadata(
        list(calibrated.class_names),
        SIZE,
        float(settings.crop_pct),
        [0.485, 0.456, 0.406],
        [0.229, 0.224, 0.225],
        thresholds=calibrated.thresholds.tolist() if multi_label else None,
        temperature=temperature_value(calibrated.temperature, task),
    )
    path = tmp_path / "model.onnx"
    export_verified(calibrated, metadata, images(), path)
    onnx_probabilities = OnnxClassifier(path).probabilities(images(6))
    checkpoint_probabilities = CheckpointClassifier.of(calibrated, None).probabilities(images(6))
    assert torch.allclose(onnx_probabilities, checkpoint_probabilities, atol=1e-5)
    with torch.inference_mode():
        raw = probabilities(calibrated(images(6)), task)
    assert not torch.allclose(onnx_probabilities, raw, atol=1e-3)  # the temperature is in the graph
