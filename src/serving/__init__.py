"""Shipping a trained model: ONNX export with a parity check, and inference behind one interface.

- `export_verified`: the model as one ONNX file (uint8 images in, normalisation inside, logits
  out, dynamic batch) plus a JSON of what serving needs, written only once onnxruntime
  reproduces PyTorch's logits on real images.
- `CheckpointClassifier`, `OnnxClassifier`: probabilities for image batches, from a checkpoint
  (PyTorch) or from an exported file (onnxruntime, no Lightning).
- `predict_files`: a prediction per file (loader workers, test-time augmentation, Grad-CAM
  images on request), `write_csv`.
"""

from src.serving.classifiers import CheckpointClassifier, Classifier, OnnxClassifier
from src.serving.onnx_export import (
    OnnxParityError,
    export_verified,
    parity_images,
    serving_metadata,
    verify_onnx,
)
from src.serving.prediction import Prediction, gradcam_writer, predict_files, write_csv

__all__ = [
    "CheckpointClassifier",
    "Classifier",
    "OnnxClassifier",
    "OnnxParityError",
    "Prediction",
    "export_verified",
    "gradcam_writer",
    "parity_images",
    "predict_files",
    "serving_metadata",
    "verify_onnx",
    "write_csv",
]
