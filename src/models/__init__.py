"""The model: a torchvision network with a new head, trained as a LightningModule.

- `ImageClassifier`: the LightningModule (normalisation on the device, loss, metrics, optimizer
  hooks); it owns a `FineTuner` for what trains when.
- `build_network`, `load_starting_weights`: any torchvision classifier, ImageNet or local weights.
- `load_checkpoint`: a trained model and the data settings it was trained with, read safely.
"""

from src.models.checkpoint import load_checkpoint, load_classifier
from src.models.classifier import ImageClassifier
from src.models.network import (
    WeightsError,
    build_network,
    classification_model_names,
    load_starting_weights,
    read_weights_file,
)

__all__ = [
    "ImageClassifier",
    "WeightsError",
    "build_network",
    "classification_model_names",
    "load_checkpoint",
    "load_classifier",
    "load_starting_weights",
    "read_weights_file",
]
