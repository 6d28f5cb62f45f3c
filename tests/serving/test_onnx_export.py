"""The ONNX export is trusted only after onnxruntime reproduces PyTorch's logits on real images."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
import torch
from onnx import numpy_helper

import src.serving.onnx_export as onnx_export
from src.serving.onnx_export import OnnxParityError, export_verified, verify_onnx
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
