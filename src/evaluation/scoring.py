"""Score a model on a data module's evaluation images, with and without test-time augmentation."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from src.data.datamodule import ImageFolderDataModule
from src.evaluation.metrics import summarise
from src.evaluation.tta import VIEWS, View, averaged


class TestTimeAugmentation(L.LightningModule):
    """`trainer.predict` through `model` with its probabilities averaged over `views`."""

    def __init__(self, model: L.LightningModule, views: tuple[View, ...]) -> None:
        super().__init__()
        self.model = model
        self.views = views

    def predict_step(self, batch, batch_idx: int) -> torch.Tensor:
        images = batch[0] if isinstance(batch, (list, tuple)) else batch
        return averaged(lambda view: self.model(view).float().softmax(dim=1), self.views, images)


def score(
    trainer: L.Trainer,
    model: L.LightningModule,
    datamodule: ImageFolderDataModule,
    to_model_label: list[int],
    tta: str = "none",
) -> tuple[dict[str, Any], torch.Tensor, torch.Tensor]:
    """(metrics, probabilities, targets) over the data module's validation images; with `tta`
    other than none, on the averaged views, and the metrics say what it changed."""
    probabilities = torch.cat(trainer.predict(model, datamodule=datamodule)).float()
    targets = torch.tensor([to_model_label[sample.label] for sample in datamodule.val_samples])
    metrics = summarise(probabilities, targets, model.class_names)
    if tta == "none":
        return metrics, probabilities, targets
    with_tta = TestTimeAugmentation(model, VIEWS[tta])
    probabilities = torch.cat(trainer.predict(with_tta, datamodule=datamodule)).float()
    without = metrics
    metrics = summarise(probabilities, targets, model.class_names)
    metrics["tta"] = {
        "views": tta,
        "accuracy_without": without["accuracy"],
        "accuracy_with": metrics["accuracy"],
        "loss_without": without["loss"],
        "loss_with": metrics["loss"],
    }
    return metrics, probabilities, targets


def probabilities_over(
    model: torch.nn.Module, images: Dataset, batch_size: int, device: torch.device
) -> torch.Tensor:
    """The model's class probabilities [N, C] for a dataset of (uint8 image, label) pairs, in one
    process without a Trainer (for use inside a running fit, whatever its strategy)."""
    model = model.to(device).eval()
    batches = []
    with torch.inference_mode():
        for batch, _ in DataLoader(images, batch_size=batch_size):
            batches.append(model(batch.to(device)).float().softmax(dim=1).cpu())
    return torch.cat(batches)
