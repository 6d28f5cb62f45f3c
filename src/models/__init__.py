"""The model: a network of any source (src.networks) with a new head, trained as a
LightningModule.

- `classifier`: `ImageClassifier`, the LightningModule (normalisation on the device, loss,
  metrics, optimizer hooks, starting weights); it owns a `FineTuner` for what trains when.
- `checkpoint`: a trained model and the data settings it was trained with, read safely.
"""
