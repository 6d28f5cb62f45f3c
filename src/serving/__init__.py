"""Shipping a trained model: ONNX export with a parity check, and inference behind one interface.

- `onnx_export`: the model as one ONNX file (uint8 images in, normalisation inside, logits out,
  dynamic batch) plus a JSON of what serving needs, written only once onnxruntime reproduces
  PyTorch's logits on real images.
- `classifiers`: probabilities for image batches, from a checkpoint (PyTorch) or from an
  exported file (onnxruntime, without Lightning).
- `prediction`: a prediction per file (loader workers, test-time augmentation, Grad-CAM images
  on request), written as CSV.
"""
