"""The model: a torchvision network with a new head, trained as a LightningModule.

- `classifier`: `ImageClassifier`, the LightningModule (normalisation on the device, loss,
  metrics, optimizer hooks); it owns a `FineTuner` for what trains when.
- `network`: any torchvision classifier, with ImageNet or local weights.
- `checkpoint`: a trained model and the data settings it was trained with, read safely.
"""
